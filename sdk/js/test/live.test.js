// Live events over /api/ws through the SDK, against a real `buddycloud serve`: delivery,
// resume after a dropped or silently dead connection (nothing missed, nothing twice),
// resync, and sign-in refusals.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { WebSocket } from "ws";

import { Buddycloud, BuddycloudError } from "../src/index.js";
import { startProxy } from "./proxy.js";
import { startServer, uniqueName, waitFor } from "./server.js";

const PASSWORD = "correct horse battery";
const FAST = { reconnectDelay: { min: 50, max: 200 } };

/** A new account on `server`, signed in with a password; `url` is where its client connects. */
async function user(server, prefix, url = server.url) {
  const name = uniqueName(prefix);
  const client = new Buddycloud({ url, WebSocket });
  await client.register({ username: name, password: PASSWORD, email: `${name}@example.org` });
  await client.signIn({ username: name, password: PASSWORD, method: "basic" });
  return client;
}

/** Every post event of `live`, in arrival order. */
function collectPosts(live) {
  const posts = [];
  live.on("post", (event) => posts.push(event));
  return posts;
}

describe("live events", () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  test("a follower hears posts and retractions; an owner hears follow requests", async () => {
    const juliet = await user(server, "juliet");
    const romeo = await user(server, "romeo");
    const paris = await user(server, "paris");
    await romeo.follow(juliet.jid);
    const romeoLive = romeo.live();
    const julietLive = juliet.live();
    try {
      const [welcome] = await Promise.all([romeoLive.next("welcome"), julietLive.next("welcome")]);
      assert.equal(welcome.jid, romeo.jid);
      assert.equal(romeoLive.state, "online");
      const posts = collectPosts(romeoLive);
      const retracted = [];
      romeoLive.on("retract", (event) => retracted.push(event.id));

      const post = await juliet.publish(juliet.jid, "It is the east, and Juliet is the sun");
      await waitFor(() => posts.length === 1, 10000, "the post event");
      assert.equal(posts[0].channel, juliet.jid);
      assert.equal(posts[0].node, "posts");
      assert.equal(posts[0].entry.id, post.id);
      assert.equal(posts[0].entry.content, "It is the east, and Juliet is the sun");
      assert.equal(romeoLive.cursor, posts[0].cursor);

      await juliet.deletePost(juliet.jid, post.id);
      await waitFor(() => retracted.length === 1, 10000, "the retract event");
      assert.deepEqual(retracted, [post.id]);

      const configuration = romeoLive.next("configuration");
      await juliet.updateMetadata(juliet.jid, { access_model: "authorize", title: "Juliet's balcony" });
      const configured = await configuration;
      assert.equal(configured.channel, juliet.jid);
      assert.equal(configured.metadata.title, "Juliet's balcony");
      assert.equal(configured.metadata.access_model, "authorize");

      const request = julietLive.next("follow-request");
      await paris.follow(juliet.jid);
      const asked = await request;
      assert.equal(asked.jid, paris.jid);
      assert.equal(asked.channel, juliet.jid);

      const subscribed = romeoLive.next("subscription");
      await juliet.approve(juliet.jid, paris.jid);
      assert.deepEqual(
        (({ channel, jid, subscription }) => ({ channel, jid, subscription }))(await subscribed),
        { channel: juliet.jid, jid: paris.jid, subscription: "subscribed" },
      );
      const role = romeoLive.next("affiliation");
      await juliet.setRole(juliet.jid, paris.jid, "moderator");
      const changed = await role;
      assert.equal(changed.jid, paris.jid);
      assert.equal(changed.affiliation, "moderator");

      // Every REST operation over the socket too, with typed errors.
      const answer = await romeoLive.request("GET", `/api/${juliet.jid}/metadata/posts`);
      assert.equal(answer.status, 200);
      assert.equal(answer.body.access_model, "authorize");
      await assert.rejects(romeoLive.request("POST", `/api/${juliet.jid}/metadata/posts`, { body: { title: "mine" } }), (error) => {
        assert.ok(error instanceof BuddycloudError);
        assert.equal(error.status, 403);
        assert.equal(error.error, "forbidden");
        return true;
      });
    } finally {
      romeoLive.close();
      julietLive.close();
    }
    assert.equal(romeoLive.state, "closed");
  });

  test("posts made while the connection is down arrive after the reconnect, once each, in order", async () => {
    const proxy = await startProxy(server.url);
    const juliet = await user(server, "juliet");
    const romeo = await user(server, "romeo", proxy.url);
    await romeo.follow(juliet.jid);
    const live = romeo.live(FAST);
    try {
      await live.next("welcome");
      const posts = collectPosts(live);
      const states = [];
      live.on("state", (state) => states.push(state));
      for (const n of [1, 2, 3]) await juliet.publish(juliet.jid, `before ${n}`);
      await waitFor(() => posts.length === 3, 10000, "three live posts");

      proxy.down();
      await waitFor(() => live.state === "offline", 10000, "the client to see the connection drop");
      for (const n of [1, 2, 3, 4, 5]) await juliet.publish(juliet.jid, `while down ${n}`);
      const resumed = live.next("resumed", 15000);
      proxy.up();
      const { replayed } = await resumed;
      assert.equal(replayed, 5);
      for (const n of [1, 2]) await juliet.publish(juliet.jid, `after ${n}`);
      await waitFor(() => posts.length >= 10, 10000, "ten posts");

      const expected = [
        ...[1, 2, 3].map((n) => `before ${n}`),
        ...[1, 2, 3, 4, 5].map((n) => `while down ${n}`),
        ...[1, 2].map((n) => `after ${n}`),
      ];
      assert.deepEqual(posts.map((event) => event.entry.content), expected);
      const cursors = posts.map((event) => event.cursor);
      assert.deepEqual(cursors, [...cursors].sort((a, b) => a - b));
      assert.equal(new Set(cursors).size, cursors.length);
      assert.ok(states.includes("offline") && states.at(-1) === "online", `states: ${states}`);
    } finally {
      live.close();
      await proxy.stop();
    }
  });

  test("a connection that goes silent (no pong) is replaced, and nothing is lost", async () => {
    const proxy = await startProxy(server.url);
    const juliet = await user(server, "juliet");
    const romeo = await user(server, "romeo", proxy.url);
    await romeo.follow(juliet.jid);
    const live = romeo.live({ ...FAST, pingInterval: 200, pongTimeout: 500 });
    try {
      await live.next("welcome");
      const posts = collectPosts(live);
      await juliet.publish(juliet.jid, "one");
      await waitFor(() => posts.length === 1, 10000, "the first post");
      proxy.freeze(); // the open connection forwards nothing more; new ones do
      for (const word of ["two", "three"]) await juliet.publish(juliet.jid, word);
      const resumed = await live.next("resumed", 15000);
      assert.equal(resumed.replayed, 2);
      await juliet.publish(juliet.jid, "four");
      await waitFor(() => posts.length >= 4, 10000, "four posts");
      assert.deepEqual(posts.map((event) => event.entry.content), ["one", "two", "three", "four"]);
    } finally {
      live.close();
      await proxy.stop();
    }
  });

  test("a cursor kept from an earlier connection resumes a new one (a page reload)", async () => {
    const juliet = await user(server, "juliet");
    const romeo = await user(server, "romeo");
    await romeo.follow(juliet.jid);
    const first = romeo.live();
    await first.next("welcome");
    const seen = collectPosts(first);
    await juliet.publish(juliet.jid, "kept 1");
    await waitFor(() => seen.length === 1, 10000, "the first post");
    const kept = first.cursor;
    first.close();
    for (const n of [2, 3]) await juliet.publish(juliet.jid, `kept ${n}`);

    const second = romeo.live({ cursor: kept });
    try {
      const posts = collectPosts(second);
      const resumed = await second.next("resumed");
      assert.equal(resumed.replayed, 2);
      assert.deepEqual(posts.map((event) => event.entry.content), ["kept 2", "kept 3"]);
    } finally {
      second.close();
    }
  });

  test("wrong credentials close the live connection for good, with a typed error", async () => {
    const juliet = await user(server, "juliet");
    const wrong = new Buddycloud({ url: server.url, WebSocket, username: juliet.jid, password: "not the password" });
    const live = wrong.live(FAST);
    const error = await live.next("error");
    assert.ok(error instanceof BuddycloudError);
    assert.equal(error.status, 401);
    assert.equal(error.error, "not-authorized"); // wrong credentials, by the token contract
    assert.equal(live.state, "closed");
  });
});

describe("live events on a server that keeps none for replay", () => {
  let server;
  before(async () => {
    server = await startServer({ BUDDYCLOUD_HTTP_REPLAY_EVENTS: "0" });
  });
  after(async () => {
    await server?.stop();
  });

  test("a resume that cannot be served says resync, and live events go on", async () => {
    const proxy = await startProxy(server.url);
    const juliet = await user(server, "juliet");
    const romeo = await user(server, "romeo", proxy.url);
    await romeo.follow(juliet.jid);
    const live = romeo.live(FAST);
    try {
      await live.next("welcome");
      const posts = collectPosts(live);
      await juliet.publish(juliet.jid, "seen");
      await waitFor(() => posts.length === 1, 10000, "the first post");
      proxy.down();
      await waitFor(() => live.state === "offline", 10000, "the drop");
      await juliet.publish(juliet.jid, "missed");
      const resync = live.next("resync", 15000);
      proxy.up();
      const { reason } = await resync;
      assert.match(reason, /no longer kept/);
      // The page reloads with REST: the missed post is there.
      const page = await romeo.posts(juliet.jid);
      assert.deepEqual(page.items.map((p) => p.content), ["missed", "seen"]);
      await juliet.publish(juliet.jid, "after the resync");
      await waitFor(() => posts.length === 2, 10000, "the next live post");
      assert.deepEqual(posts.map((event) => event.entry.content), ["seen", "after the resync"]);
    } finally {
      live.close();
      await proxy.stop();
    }
  });
});
