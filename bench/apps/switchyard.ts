import { Server } from "switchyard";
import { type ServerClass, startApp } from "./app.js";

startApp(Server as unknown as ServerClass, "switchyard");
