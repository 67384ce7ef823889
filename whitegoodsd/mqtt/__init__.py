"""MQTT: the one broker connection that MQTT appliances and the MQTT output share.

``link`` keeps the connection (paho-mqtt driven by the asyncio loop), ``hub``
routes the plugs' messages to their drivers and the monitor (the Hub of
``sources.py`` for ``driver = mqtt``).  The payload formats are in
``protocols/mqtt_formats.py``.  paho-mqtt is imported only when a hub is made.
"""
