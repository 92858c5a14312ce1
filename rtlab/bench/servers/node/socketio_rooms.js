// The tutorial's Socket.IO rooms server (WebSocket transport), plus `echo` with an ack,
// and an ack for `send-message` when the client asks for one (rtlab bench's chat scenario);
// with RTLAB_BENCH_REDIS, Socket.IO's Redis adapter.
const http = require("http");
const { Server } = require("socket.io");

const server = http.createServer();
const io = new Server(server, { transports: ["websocket"] });

io.on("connection", (socket) => {
  socket.on("join-room", (roomId, ack) => {
    socket.join(roomId);
    socket.to(roomId).emit("user-joined", socket.id);
    if (typeof ack === "function") ack({ roomId });
  });
  socket.on("send-message", ({ roomId, message }, ack) => {
    io.to(roomId).emit("receive-message", {
      userId: socket.id,
      message,
      timestamp: new Date().toISOString(),
    });
    if (typeof ack === "function") ack({ ok: true });
  });
  socket.on("broadcast", (message) => {
    io.emit("broadcast-message", {
      userId: socket.id,
      message,
      timestamp: new Date().toISOString(),
    });
  });
  socket.on("echo", (data, ack) => {
    if (typeof ack === "function") ack(data);
  });
});

async function main() {
  // With RTLAB_BENCH_REDIS (rtlab bench's redis scenario): rooms span every process on
  // that Redis, through Socket.IO's own Redis adapter.
  const url = process.env.RTLAB_BENCH_REDIS;
  if (url) {
    const { createClient } = require("redis");
    const { createAdapter } = require("@socket.io/redis-adapter");
    const pub = createClient({ url });
    const sub = pub.duplicate();
    await Promise.all([pub.connect(), sub.connect()]);
    io.adapter(createAdapter(pub, sub));
  }
  server.listen(0, "127.0.0.1", () => console.log(`listening ${server.address().port}`));
}

main();
process.on("SIGTERM", () => process.exit(0));
