// Runs one tplink-smarthome-simulator device on 127.0.0.1 for the tests.
//
// usage: node kasa-simulator.js MODEL
// Prints {"port": N} once listening (TCP and UDP on the same port), then reads
// JSON lines on stdin: {"power": W, "voltage": V, "current": A, "total": kWh}
// sets the emeter's realtime values (any subset); each line is answered "ok".
'use strict';
const readline = require('readline');
const { Device } = require('tplink-smarthome-simulator');

async function main() {
  const model = process.argv[2] || 'hs110';
  // The simulator binds UDP on a free port, then TCP on the same number,
  // which may be taken (an ephemeral port of some TCP connection): try again.
  let device;
  for (let attempt = 1; ; attempt++) {
    device = new Device({
      model,
      port: 0,
      address: '127.0.0.1',
      data: { alias: `Test ${model}`, mac: '50:c7:bf:00:00:01', deviceId: '8006TESTDEVICE0000000000000000000000000' },
    });
    try {
      await device.start();
      break;
    } catch (err) {
      await device.stop();
      if (!(err && err.code === 'EADDRINUSE') || attempt >= 20) throw err;
    }
  }
  // Constructor data is overwritten for hs110v2: set the emeter afterwards.
  device.data.emeter.realtime = { power: 0.5, voltage: 230.1, current: 0.01, total: 1.5 };
  process.stdout.write(JSON.stringify({ port: device.port }) + '\n');
  const lines = readline.createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const values = JSON.parse(line);
    Object.assign(device.data.emeter.realtime, values);
    process.stdout.write('ok\n');
  });
  lines.on('close', () => process.exit(0));
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + '\n');
  process.exit(1);
});
