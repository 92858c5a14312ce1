// The tutorial's Socket.IO rooms server (WebSocket transport), plus `echo` with an ack,
// and an ack for `send-message` when the client asks for one (rtlab bench's chat scenario).
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

server.listen(0, "127.0.0.1", () => console.log(`listening ${server.address().port}`));
process.on("SIGTERM", () => process.exit(0));
