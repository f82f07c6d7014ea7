// Unit tests of token sign-in against the contract of POST/DELETE /api/auth/token, with a
// fake fetch that records what the SDK sends. The real server is driven in rest.test.js and
// live.test.js.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Buddycloud, BuddycloudError } from "../src/index.js";

function json(status, body, headers = {}) {
  return new Response(body === null ? null : JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/** A fake server: tokens "t1", "t2"... each valid until revoked or replaced by refresh. */
function fakeServer({ lifetime = 3600, tokens = true, sessionOver = false } = {}) {
  const seen = [];
  let issued = 0;
  const valid = new Set();
  const fetch = async (url, init) => {
    const { pathname } = new URL(url);
    const auth = init.headers.Authorization ?? null;
    seen.push({ method: init.method, path: pathname, auth, body: init.body ?? null });
    if (pathname === "/api/auth/token") {
      if (!tokens) return json(404, { error: "no-such-endpoint", message: "nothing here" });
      if (init.method === "DELETE") {
        valid.clear();
        return new Response(null, { status: 204 });
      }
      if (auth?.startsWith("Bearer ")) {
        if (sessionOver || !valid.has(auth.slice(7))) return json(401, { error: "not-authorized", message: "over" });
      } else {
        const body = JSON.parse(init.body);
        if (body.password !== "right password") {
          return json(401, { error: "not-authorized", message: "wrong" }, { "retry-after": "3" });
        }
      }
      issued += 1;
      const token = `t${issued}`;
      valid.add(token);
      return json(200, { token, token_type: "Bearer", expires_in: lifetime, jid: "juliet@capulet.lit" });
    }
    if (auth === null || (auth.startsWith("Bearer ") && !valid.has(auth.slice(7)))) {
      return json(401, { error: "not-authenticated", message: "sign in" });
    }
    if (pathname === "/api") return new Response(null, { status: 204 });
    if (pathname === "/api/subscribed") return json(200, { "juliet@capulet.lit/posts": "owner" });
    return json(200, []);
  };
  return { fetch, seen, valid };
}

test("a token sign-in sends the credentials as JSON, then the token on every request", async () => {
  const server = fakeServer();
  const sessions = [];
  const client = new Buddycloud({ url: "https://capulet.lit", fetch: server.fetch, onSession: (s) => sessions.push(s) });
  assert.equal(await client.signIn({ username: "juliet", password: "right password" }), "juliet@capulet.lit");
  assert.equal(client.method, "token");
  assert.deepEqual(JSON.parse(server.seen[0].body), { username: "juliet", password: "right password" });
  assert.equal(server.seen[0].auth, null);
  await client.posts("juliet@capulet.lit");
  assert.equal(server.seen.at(-1).auth, "Bearer t1");
  assert.equal(sessions[0].token, "t1");
  assert.equal(client.session.jid, "juliet@capulet.lit");
});

test("a token close to its end is refreshed before the request", async () => {
  const server = fakeServer({ lifetime: 2 }); // under the 5 s margin: refreshed at once
  const client = new Buddycloud({ url: "https://capulet.lit", fetch: server.fetch });
  await client.signIn({ username: "juliet", password: "right password", method: "token" });
  await client.posts("juliet@capulet.lit");
  const [, refresh, get] = server.seen;
  assert.deepEqual([refresh.method, refresh.path, refresh.auth, refresh.body], ["POST", "/api/auth/token", "Bearer t1", null]);
  assert.equal(get.auth, "Bearer t2");
});

test("a refused token is refreshed once and the request asked again", async () => {
  const server = fakeServer();
  const client = new Buddycloud({ url: "https://capulet.lit", fetch: server.fetch });
  await client.signIn({ username: "juliet", password: "right password" });
  server.valid.delete("t1"); // the server forgot it; a refresh with it fails...
  await assert.rejects(client.posts("juliet@capulet.lit"), (error) => {
    assert.ok(error instanceof BuddycloudError);
    assert.equal(error.status, 401);
    return true;
  });
  // ...and the session is over: the client is a guest now.
  assert.equal(client.method, null);

  const again = new Buddycloud({ url: "https://capulet.lit", fetch: server.fetch });
  await again.signIn({ username: "juliet", password: "right password" });
  const token = again.session.token;
  // An expired access token whose session still allows refresh: the server accepts the
  // refresh (valid), refuses the request once.
  let refused = false;
  const flaky = async (url, init) => {
    if (!refused && new URL(url).pathname.endsWith("/content/posts")) {
      refused = true;
      return json(401, { error: "not-authenticated", message: "expired" });
    }
    return server.fetch(url, init);
  };
  const client2 = new Buddycloud({ url: "https://capulet.lit", fetch: flaky, session: again.session });
  const page = await client2.posts("juliet@capulet.lit");
  assert.deepEqual(page.items, []);
  assert.notEqual(client2.session.token, token);
});

test("sign out revokes the token on the server; wrong credentials are typed, with Retry-After", async () => {
  const server = fakeServer();
  const client = new Buddycloud({ url: "https://capulet.lit", fetch: server.fetch });
  await assert.rejects(client.signIn({ username: "juliet", password: "wrong" }), (error) => {
    assert.equal(error.status, 401);
    assert.equal(error.error, "not-authorized");
    assert.equal(error.retryAfter, 3);
    return true;
  });
  await client.signIn({ username: "juliet", password: "right password" });
  await client.signOut();
  const last = server.seen.at(-1);
  assert.deepEqual([last.method, last.path, last.auth], ["DELETE", "/api/auth/token", "Bearer t1"]);
  assert.equal(client.jid, null);
  assert.equal(server.valid.size, 0);
});

test("without a token endpoint, the default sign-in uses Basic; method token fails", async () => {
  const server = fakeServer({ tokens: false });
  const client = new Buddycloud({ url: "https://capulet.lit", fetch: server.fetch });
  await assert.rejects(client.signIn({ username: "juliet", password: "right password", method: "token" }), (error) => {
    assert.equal(error.status, 404);
    return true;
  });
  assert.equal(await client.signIn({ username: "juliet", password: "right password" }), "juliet@capulet.lit");
  assert.equal(client.method, "basic");
  assert.equal(server.seen.at(-1).auth, `Basic ${btoa("juliet:right password")}`);
});

/** A fake WebSocket that records its URLs; the test plays the server. */
class FakeSocket {
  static opened = [];
  constructor(url, options) {
    this.url = new URL(url);
    this.options = options;
    this.readyState = 1;
    this.sent = [];
    this.onmessage = this.onclose = this.onerror = null;
    FakeSocket.opened.push(this);
  }
  send(text) {
    this.sent.push(JSON.parse(text));
  }
  close() {
    this.readyState = 3;
  }
  serverSays(message) {
    this.onmessage?.({ data: JSON.stringify(message) });
  }
  serverCloses(code) {
    this.readyState = 3;
    this.onclose?.({ code });
  }
}

test("a live connection signs in with the token in the URL; a refused token is refreshed once", async () => {
  FakeSocket.opened = [];
  const server = fakeServer();
  const client = new Buddycloud({ url: "https://capulet.lit", fetch: server.fetch, WebSocket: FakeSocket });
  await client.signIn({ username: "juliet", password: "right password" });
  const live = client.live({ reconnectDelay: { min: 1, max: 1 } });
  const states = [];
  live.on("state", (state) => states.push(state));
  await new Promise((done) => setTimeout(done, 20));
  const [first] = FakeSocket.opened;
  assert.equal(first.url.protocol, "wss:");
  assert.equal(first.url.pathname, "/api/ws");
  assert.equal(first.url.searchParams.get("token"), "t1");
  assert.equal(first.options, undefined); // no header: a browser could not send one

  first.serverSays({ type: "error", error: "not-authorized", message: "the token expired" });
  first.serverCloses(4401);
  await new Promise((done) => setTimeout(done, 50));
  const second = FakeSocket.opened[1];
  assert.equal(second.url.searchParams.get("token"), "t2");

  const errors = [];
  live.on("error", (error) => errors.push(error));
  server.valid.clear(); // the session is over: the refresh is refused too
  second.serverSays({ type: "error", error: "not-authorized", message: "revoked" });
  second.serverCloses(4401);
  await new Promise((done) => setTimeout(done, 50));
  assert.equal(FakeSocket.opened.length, 2);
  assert.equal(live.state, "closed");
  assert.deepEqual(errors.map((e) => [e.status, e.error, e.message]), [[401, "not-authorized", "revoked"]]);
  assert.deepEqual(states, ["offline", "connecting", "closed"]);
});

test("a resumed connection keeps its cursor past welcome, and drops events it has seen", async () => {
  FakeSocket.opened = [];
  const client = new Buddycloud({ url: "http://capulet.lit", WebSocket: FakeSocket, username: "juliet@capulet.lit", password: "pw" });
  const live = client.live({ cursor: 100 });
  await new Promise((done) => setTimeout(done, 20));
  const [socket] = FakeSocket.opened;
  assert.equal(socket.url.searchParams.get("cursor"), "100");
  assert.equal(socket.options.headers.Authorization, `Basic ${btoa("juliet@capulet.lit:pw")}`);
  const got = [];
  live.on("event", (event) => got.push(event.cursor));
  socket.serverSays({ type: "welcome", jid: "juliet@capulet.lit", cursor: 500 });
  for (const cursor of [101, 102, 102, 101, 501]) {
    socket.serverSays({ type: "post", cursor, channel: "juliet@capulet.lit", node: "posts", entry: {} });
  }
  socket.serverSays({ type: "resumed", cursor: 100, replayed: 2 });
  assert.deepEqual(got, [101, 102, 501]);
  assert.equal(live.cursor, 501);
  live.close();
  assert.equal(live.state, "closed");
});
