"""Sans-I/O codecs for the plug protocols: bytes in, values out, no sockets."""
