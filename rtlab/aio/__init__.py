"""The asyncio layer: servers and tools on `websockets` and asyncio streams."""
