// A webhook receiver that records the scale signals it gets (demo and tests).
import { createServer, IncomingMessage, Server } from "node:http";

export interface ReceivedSignal {
  at: number;
  path: string;
  headers: IncomingMessage["headers"];
  body: Record<string, unknown>;
}

export interface WebhookReceiver {
  server: Server;
  signals: ReceivedSignal[];
  /** The status to answer with (tests switch it to provoke retries). */
  answerStatus: number;
  close(): Promise<void>;
}

export function startWebhookReceiver(port: number, onSignal?: (s: ReceivedSignal) => void): Promise<WebhookReceiver> {
  const receiver: WebhookReceiver = {
    server: undefined as unknown as Server,
    signals: [],
    answerStatus: 200,
    close: () =>
      new Promise((resolve) => {
        receiver.server.close(() => resolve());
        receiver.server.closeAllConnections();
      }),
  };
  receiver.server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>;
      } catch {
        body = { unparsable: Buffer.concat(chunks).toString("utf8") };
      }
      const signal = { at: Date.now(), path: req.url ?? "/", headers: req.headers, body };
      if (receiver.answerStatus >= 200 && receiver.answerStatus < 300) receiver.signals.push(signal);
      onSignal?.(signal);
      res.writeHead(receiver.answerStatus, { "content-type": "application/json" });
      res.end('{"ok":true}');
    });
  });
  return new Promise((resolve, reject) => {
    receiver.server.once("error", reject);
    receiver.server.listen(port, "127.0.0.1", () => resolve(receiver));
  });
}
