/**
 * Compile-time tests of the typed event maps: this file is checked by `tsc --noEmit`
 * (see ../types.test.ts). Each `@ts-expect-error` marks code that must NOT compile;
 * if it compiled, tsc reports the unused directive and the test fails.
 */
import { createServer } from "node:http";
import { type Namespace, Server, type Socket } from "@switchyard/server";

interface ClientToServerEvents {
  hello: (name: string) => void;
  add: (a: number, b: number, cb: (sum: number) => void) => void;
}

interface ServerToClientEvents {
  tick: (price: number, symbol: string) => void;
  ask: (question: string, cb: (answer: string) => void) => void;
  noArgs: () => void;
}

interface InterServerEvents {
  ping: (n: number) => void;
}

interface SocketData {
  user: string;
  age: number;
}

const io = new Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>(
  createServer(),
);

io.on("connection", (socket) => {
  // Listener arguments come from ClientToServerEvents.
  socket.on("hello", (name) => {
    const n: string = name;
    void n;
  });
  socket.on("add", (a, b, cb) => cb(a + b));
  // @ts-expect-error the listener's parameter type does not match the map
  socket.on("hello", (name: number) => void name);
  socket.on("disconnect", (reason) => {
    const r: string = reason;
    void r;
  });

  // Emits are checked against ServerToClientEvents.
  socket.emit("tick", 1.5, "ACME");
  socket.emit("noArgs");
  // @ts-expect-error wrong argument type
  socket.emit("tick", "1.5", "ACME");
  // @ts-expect-error unknown event
  socket.emit("unknown", 1);
  // @ts-expect-error missing argument
  socket.emit("tick", 1.5);

  // Acks: plain, then with a timeout the callback gets an error first.
  socket.emit("ask", "why?", (answer) => {
    const a: string = answer;
    void a;
  });
  socket.timeout(1000).emit("ask", "why?", (err, answer) => {
    const e: Error | null = err;
    const a: string = answer;
    void e;
    void a;
  });
  void socket
    .timeout(1000)
    .emitWithAck("ask", "why?")
    .then((answer) => {
      const a: string = answer;
      void a;
    });
  // @ts-expect-error emitWithAck only for events that take an ack
  void socket.emitWithAck("tick", 1, "x");

  // SocketData is typed.
  socket.data.user = "ada";
  // @ts-expect-error SocketData.age is a number
  socket.data.age = "old";

  // Rooms and broadcasts keep the emit types.
  socket.to("room").emit("tick", 2, "ACME");
  // @ts-expect-error wrong type through a broadcast operator
  socket.broadcast.emit("tick", "2", "ACME");
});

// Server-level broadcasts and namespaces.
io.emit("tick", 3, "ACME");
io.to(["a", "b"]).except("c").volatile.emit("noArgs");
// @ts-expect-error unknown event on a broadcast
io.to("a").emit("nope");
io.timeout(500).emit("ask", "all?", (err, answers) => {
  const e: Error | null = err;
  const list: string[] = answers;
  void e;
  void list;
});
void io
  .timeout(500)
  .emitWithAck("ask", "all?")
  .then((answers) => {
    const list: string[] = answers;
    void list;
  });

const admin: Namespace<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData> =
  io.of("/admin");
admin.emit("tick", 4, "ACME");
admin.serverSideEmit("ping", 1);
// @ts-expect-error inter-server events are typed too
admin.serverSideEmit("ping", "1");
admin.on("ping", (n) => {
  const x: number = n;
  void x;
});

// Reserved events cannot be used as user emits of an untyped server either... but
// listeners for them are typed by the library.
const plain = new Server();
plain.on("connection", (socket: Socket) => {
  socket.emit("anything", 1, { a: 2 });
  socket.on("whatever", (...args) => void args);
});

// fetchSockets keeps SocketData.
void io.fetchSockets().then((sockets) => {
  for (const s of sockets) {
    const u: string = s.data.user;
    void u;
    s.emit("tick", 1, "x");
  }
});

// Untyped servers accept acks of any shape, as socket.io's types do.
plain.on("connection", (socket: Socket) => {
  void socket.emitWithAck("ask", "q", 1).then((answer) => void answer);
  void socket
    .timeout(100)
    .emitWithAck("ask", "q")
    .then((answer) => void answer);
  void plain
    .timeout(100)
    .emitWithAck("ask", 1)
    .then((answers) => void answers);
});

io.on("connection", (socket) => {
  // @ts-expect-error an event without arguments takes no ack
  void socket.emitWithAck("noArgs");
});
