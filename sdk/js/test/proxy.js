// A TCP proxy in front of the server, so that a test can drop or freeze the connections that
// pass through it, as a network would.
import { createServer, connect } from "node:net";

/**
 * @param {string} target the server's http://host:port
 */
export async function startProxy(target) {
  const { hostname, port } = new URL(target);
  const pairs = new Set();
  let mode = "up"; // "up": forward; "down": refuse (close at once); "frozen": hold, forward nothing
  const server = createServer((client) => {
    if (mode === "down") {
      client.destroy();
      return;
    }
    const upstream = connect(Number(port), hostname);
    const pair = { client, upstream, frozen: mode === "frozen" };
    pairs.add(pair);
    const forward = (from, to) =>
      from.on("data", (chunk) => {
        if (!pair.frozen) to.write(chunk);
      });
    forward(client, upstream);
    forward(upstream, client);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("close", end).on("error", end);
    upstream.on("close", end).on("error", end);
  });
  await new Promise((done) => server.listen(0, "127.0.0.1", done));
  const address = /** @type {import("node:net").AddressInfo} */ (server.address());
  return {
    url: `http://127.0.0.1:${address.port}`,
    /** How many connections pass through now. */
    get open() {
      return pairs.size;
    },
    /** Drop every connection and refuse new ones until `up()`. */
    down() {
      mode = "down";
      for (const pair of [...pairs]) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
    },
    /** Stop forwarding on the open connections without closing them (a dead network path). */
    freeze() {
      for (const pair of pairs) pair.frozen = true;
    },
    up() {
      mode = "up";
    },
    async stop() {
      this.down();
      await new Promise((done) => server.close(() => done(undefined)));
    },
  };
}
