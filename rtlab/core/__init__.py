"""Pure protocol logic: no sockets, no event loops."""
