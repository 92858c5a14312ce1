// The tutorial's Node `ws` echo server: text m is answered `Echo: ${m}`; binary comes back as is.
const { WebSocketServer } = require("ws");

const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
wss.on("connection", (ws) => {
  ws.on("message", (message, isBinary) => {
    ws.send(isBinary ? message : `Echo: ${message}`);
  });
});
wss.on("listening", () => console.log(`listening ${wss.address().port}`));
process.on("SIGTERM", () => process.exit(0));
