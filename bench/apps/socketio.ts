import { Server } from "socket.io";
import { type ServerClass, startApp } from "./app.js";

startApp(Server as unknown as ServerClass, "socketio");
