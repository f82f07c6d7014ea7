// Token sign-in against a real `buddycloud serve`: POST/DELETE /api/auth/token, refresh, and
// the live connection signing in with the token in its URL, as a browser's must.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { WebSocket } from "ws";

import { Buddycloud, BuddycloudError } from "../src/index.js";
import { startServer, uniqueName, waitFor } from "./server.js";

const PASSWORD = "correct horse battery";

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

async function account(prefix) {
  const name = uniqueName(prefix);
  await new Buddycloud({ url: server.url }).register({ username: name, password: PASSWORD, email: `${name}@example.org` });
  return name;
}

test("the default sign-in takes a token; requests, refresh and sign-out use it", async () => {
  const name = await account("juliet");
  const sessions = [];
  const juliet = new Buddycloud({ url: server.url, onSession: (session) => sessions.push(session) });
  assert.equal(await juliet.signIn({ username: name, password: PASSWORD }), `${name}@localhost`);
  assert.equal(juliet.method, "token");
  assert.equal(sessions.length, 1);
  assert.ok(sessions[0].expiresAt > Date.now());
  const post = await juliet.publish(juliet.jid, "signed in with a token");
  assert.equal(post.author, juliet.jid);

  const first = juliet.session;
  await juliet.refresh(); // a fresh token of the same session (the same one within a second)
  assert.equal(sessions.length, 2);
  assert.ok(juliet.session.expiresAt >= first.expiresAt);
  assert.equal((await juliet.post(juliet.jid, post.id)).content, "signed in with a token");

  // A page reload: the session is kept and used again without the password.
  const reloaded = new Buddycloud({ url: server.url, session: juliet.session });
  assert.equal(reloaded.jid, juliet.jid);
  await reloaded.publish(reloaded.jid, "after a reload");

  const token = juliet.session.token;
  await juliet.signOut();
  assert.equal(juliet.method, null);
  assert.deepEqual(sessions.at(-1), null);
  const stale = new Buddycloud({ url: server.url, session: { token, jid: `${name}@localhost` } });
  await assert.rejects(stale.publish(`${name}@localhost`, "after sign-out"), (error) => {
    assert.ok(error instanceof BuddycloudError);
    assert.equal(error.status, 401);
    assert.equal(error.error, "not-authorized");
    return true;
  });
  assert.equal(stale.method, null); // the refresh was refused too: the session is over
});

test("wrong credentials for a token: 401 not-authorized", async () => {
  const name = await account("romeo");
  const romeo = new Buddycloud({ url: server.url });
  await assert.rejects(romeo.signIn({ username: name, password: "not the password", method: "token" }), (error) => {
    assert.equal(error.status, 401);
    assert.equal(error.error, "not-authorized");
    return true;
  });
  assert.equal(romeo.jid, null);
});

test("a live connection signs in with the token in its URL and hears posts", async () => {
  const julietName = await account("juliet");
  const romeoName = await account("romeo");
  const juliet = new Buddycloud({ url: server.url });
  await juliet.signIn({ username: julietName, password: PASSWORD, method: "token" });
  // No Basic fallback: this WebSocket refuses headers, as a browser's cannot send them.
  class BrowserLikeWebSocket extends WebSocket {
    constructor(url, ...rest) {
      if (rest.length) throw new SyntaxError("a browser's WebSocket takes no headers");
      super(url);
    }
  }
  const romeo = new Buddycloud({ url: server.url, WebSocket: BrowserLikeWebSocket });
  await romeo.signIn({ username: romeoName, password: PASSWORD, method: "token" });
  await romeo.follow(juliet.jid);
  const live = romeo.live();
  try {
    const welcome = await live.next("welcome");
    assert.equal(welcome.jid, romeo.jid);
    const posts = [];
    live.on("post", (event) => posts.push(event.entry.content));
    await juliet.publish(juliet.jid, "to a browser");
    await waitFor(() => posts.length === 1, 10000, "the post");
    assert.deepEqual(posts, ["to a browser"]);
  } finally {
    live.close();
  }
});
