// The REST API through the SDK, against a real `buddycloud serve`.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { Buddycloud, BuddycloudError, ratingOf, summarizeRatings } from "../src/index.js";
import { startServer, uniqueName } from "./server.js";

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

const PASSWORD = "correct horse battery";

/** A new account, signed in with a password (HTTP Basic). */
async function user(prefix = "user") {
  const name = uniqueName(prefix);
  const client = new Buddycloud({ url: server.url });
  await client.register({ username: name, password: PASSWORD, email: `${name}@example.org` });
  await client.signIn({ username: name, password: PASSWORD, method: "basic" });
  return client;
}

// Wrong credentials: 401 `not-authorized`, whatever the reason (the sign-in token contract).
const WRONG_CREDENTIALS = ["not-authorized"];

async function rejects(promise, status, error) {
  await assert.rejects(promise, (thrown) => {
    assert.ok(thrown instanceof BuddycloudError, `expected a BuddycloudError, got ${thrown}`);
    assert.equal(thrown.status, status, thrown.message);
    if (Array.isArray(error)) assert.ok(error.includes(thrown.error), `${thrown.error}: ${thrown.message}`);
    else assert.equal(thrown.error, error, thrown.message);
    return true;
  });
}

describe("accounts and sign-in", () => {
  test("register, then sign in with a bare name or a JID; wrong passwords are 401", async () => {
    const name = uniqueName("juliet");
    const client = new Buddycloud({ url: server.url });
    const jid = await client.register({ username: name, password: PASSWORD, email: `${name}@example.org` });
    assert.equal(jid, `${name}@localhost`);
    assert.equal(await client.signIn({ username: name, password: PASSWORD, method: "basic" }), jid);
    assert.equal(client.jid, jid);
    assert.equal(client.method, "basic");

    const again = new Buddycloud({ url: `${server.url}/api/` });
    assert.equal(await again.signIn({ username: jid, password: PASSWORD, method: "basic" }), jid);

    const wrong = new Buddycloud({ url: server.url });
    await rejects(wrong.signIn({ username: name, password: "not the password", method: "basic" }), 401, WRONG_CREDENTIALS);
    assert.equal(wrong.jid, null);
    assert.equal(wrong.method, null);
    await rejects(client.register({ username: name, password: PASSWORD, email: "x@example.org" }), 409, "account-exists");
  });

  test("a changed password works at once, the old one not; a deleted account is gone", async () => {
    const name = uniqueName("rosaline");
    const client = new Buddycloud({ url: server.url });
    await client.register({ username: name, password: PASSWORD, email: `${name}@example.org` });
    await client.signIn({ username: name, password: PASSWORD, method: "basic" });
    await client.changePassword("a brand new password");
    await client.publish(client.jid, "still signed in");
    const old = new Buddycloud({ url: server.url });
    await rejects(old.signIn({ username: name, password: PASSWORD, method: "basic" }), 401, WRONG_CREDENTIALS);
    const fresh = new Buddycloud({ url: server.url });
    await fresh.signIn({ username: name, password: "a brand new password", method: "basic" });
    const jid = fresh.jid;
    await fresh.deleteAccount();
    assert.equal(fresh.jid, null);
    await rejects(new Buddycloud({ url: server.url }).posts(jid), 404, "node-not-found");
  });

  test("a server that cannot be reached is a network-error with status 0", async () => {
    const client = new Buddycloud({ url: "http://127.0.0.1:9" });
    await rejects(client.posts("juliet@localhost"), 0, "network-error");
  });
});

describe("posts", () => {
  test("publish, read one, page through with first/last/count, delete", async () => {
    const juliet = await user("juliet");
    const ids = [];
    for (let n = 1; n <= 5; n += 1) {
      const post = await juliet.publish(juliet.jid, { content: `post ${n}`, title: `title ${n}` });
      assert.equal(post.author, juliet.jid);
      assert.equal(post.content, `post ${n}`);
      ids.push(post.id);
    }
    const one = await juliet.post(juliet.jid, ids[2]);
    assert.equal(one.content, "post 3");

    const guest = new Buddycloud({ url: server.url });
    const newest = await guest.posts(juliet.jid, { max: 2 });
    assert.deepEqual(newest.items.map((p) => p.content), ["post 5", "post 4"]);
    assert.equal(newest.count, 5);
    assert.equal(newest.first, ids[4]);
    assert.equal(newest.last, ids[3]);
    const older = await guest.posts(juliet.jid, { max: 2, after: newest.last });
    assert.deepEqual(older.items.map((p) => p.content), ["post 3", "post 2"]);
    const newer = await guest.posts(juliet.jid, { max: 2, before: older.first });
    assert.deepEqual(newer.items.map((p) => p.content), ["post 5", "post 4"]);
    const oldest = await guest.posts(juliet.jid, { max: 2, before: "" });
    assert.deepEqual(oldest.items.map((p) => p.content), ["post 2", "post 1"]);

    await juliet.deletePost(juliet.jid, ids[0]);
    await rejects(guest.post(juliet.jid, ids[0]), 404, "item-not-found");
    const all = await guest.posts(juliet.jid);
    assert.deepEqual(all.items.map((p) => p.content), ["post 5", "post 4", "post 3", "post 2"]);
  });

  test("replace (PUT) swaps the status node's current post", async () => {
    const juliet = await user("juliet");
    await juliet.replace(juliet.jid, "at the balcony", { node: "status" });
    const now = await juliet.replace(juliet.jid, { content: "in the tomb" }, { node: "status" });
    assert.equal(now.content, "in the tomb");
    const page = await juliet.posts(juliet.jid, { node: "status" });
    assert.deepEqual(page.items.map((p) => p.content), ["in the tomb"]);
  });

  test("replies and threads; a reply to a reply is refused", async () => {
    const juliet = await user("juliet");
    const romeo = await user("romeo");
    await romeo.follow(juliet.jid);
    const parent = await juliet.publish(juliet.jid, "Wherefore art thou?");
    const other = await juliet.publish(juliet.jid, "Good night");
    const first = await romeo.reply(juliet.jid, parent.id, "Here!");
    const second = await juliet.reply(juliet.jid, parent.id, { content: "Where?" });
    assert.equal(first.replyTo, parent.id);
    const replies = await romeo.replies(juliet.jid, parent.id);
    assert.deepEqual(replies.items.map((p) => p.id), [second.id, first.id]);
    assert.equal(replies.count, 2);
    const threads = await romeo.threads(juliet.jid);
    assert.deepEqual(threads.items.map((t) => t.id), [parent.id, other.id]);
    assert.deepEqual(threads.items[0].items.map((p) => p.id).sort(), [parent.id, first.id, second.id].sort());
    await rejects(romeo.reply(juliet.jid, first.id, "deeper"), 400, "bad-request");
  });

  test("ratings: one per user and post, 1 to 5, read back from the replies", async () => {
    const juliet = await user("juliet");
    const romeo = await user("romeo");
    const nurse = await user("nurse");
    await romeo.follow(juliet.jid);
    await nurse.follow(juliet.jid);
    const post = await juliet.publish(juliet.jid, "Rate my balcony speech");
    const rating = await romeo.rate(juliet.jid, post.id, 5);
    assert.equal(ratingOf(rating), 5);
    assert.equal(rating.replyTo, post.id);
    await nurse.rate(juliet.jid, post.id, 2);
    await juliet.reply(juliet.jid, post.id, "thank you");
    await rejects(romeo.rate(juliet.jid, post.id, 4), 400, "bad-request");
    await assert.rejects(romeo.rate(juliet.jid, post.id, /** @type {any} */ (6)), RangeError);
    const replies = await juliet.replies(juliet.jid, post.id);
    const summary = summarizeRatings(replies.items);
    assert.deepEqual(summary, { count: 2, average: 3.5, byAuthor: { [romeo.jid]: 5, [nurse.jid]: 2 } });
    assert.equal(ratingOf(post), null);
  });

  test("typed errors: status and the server's error name", async () => {
    const juliet = await user("juliet");
    const romeo = await user("romeo");
    await rejects(romeo.publish(juliet.jid, "not my channel"), 403, "forbidden");
    await rejects(new Buddycloud({ url: server.url }).publish(juliet.jid, "guest"), 401, "not-authenticated");
    await rejects(juliet.post(juliet.jid, "no-such-post"), 404, "item-not-found");
    await rejects(juliet.request("GET", "/api/nothing/here"), 404, "no-such-endpoint");
    await rejects(juliet.request("GET", `/api/${juliet.jid}/content/posts`, { query: { maxx: "5" } }), 400, "unknown-parameter");
  });
});

describe("channels, metadata and settings", () => {
  test("create a topic channel, change its settings, delete it", async () => {
    const juliet = await user("juliet");
    const topic = `${uniqueName("balcony")}@topics.localhost`;
    const created = await juliet.createChannel(topic, { title: "The balcony", access_model: "authorize" });
    assert.equal(created.title, "The balcony");
    assert.equal(created.channel_type, "topic");
    assert.equal(created.access_model, "authorize");
    await rejects(juliet.createChannel(topic), 409, "conflict");
    const changed = await juliet.updateMetadata(topic, {
      description: "Where lovers meet",
      access_model: "open",
      default_affiliation: "publisher",
    });
    assert.equal(changed.description, "Where lovers meet");
    assert.equal(changed.access_model, "open");
    assert.equal(changed.default_affiliation, "publisher");
    const guest = new Buddycloud({ url: server.url });
    assert.deepEqual(await guest.metadata(topic), changed);
    await juliet.publish(topic, "first words");
    await juliet.deleteChannel(topic);
    await rejects(guest.metadata(topic), 404, "node-not-found");
  });

  test("application nodes", async () => {
    const juliet = await user("juliet");
    await juliet.createNode(juliet.jid, "letters");
    await juliet.publish(juliet.jid, "a letter", { node: "letters" });
    const page = await juliet.posts(juliet.jid, { node: "letters" });
    assert.deepEqual(page.items.map((p) => p.content), ["a letter"]);
    await juliet.deleteNode(juliet.jid, "letters");
    await rejects(juliet.posts(juliet.jid, { node: "letters" }), 404, "node-not-found");
  });
});

describe("following, followers and roles", () => {
  test("follow and unfollow an open channel", async () => {
    const juliet = await user("juliet");
    const romeo = await user("romeo");
    assert.equal(await romeo.follow(juliet.jid), "publisher");
    const mine = await romeo.subscriptions();
    assert.ok(mine.items.some((s) => s.channel === juliet.jid && s.node === "posts" && s.role === "publisher"));
    const followers = await juliet.followers(juliet.jid);
    assert.deepEqual(
      followers.items.find((f) => f.jid === romeo.jid),
      { jid: romeo.jid, role: "publisher" },
    );
    await romeo.publish(juliet.jid, "a follower may post");
    await romeo.unfollow(juliet.jid);
    const after = await romeo.subscriptions();
    assert.ok(!after.items.some((s) => s.channel === juliet.jid));
    await rejects(romeo.unfollow(juliet.jid), 409, "not-subscribed");
  });

  test("an authorize channel: pending request, approve, roles, ban", async () => {
    const juliet = await user("juliet");
    const romeo = await user("romeo");
    const paris = await user("paris");
    await juliet.updateMetadata(juliet.jid, { access_model: "authorize" });
    assert.equal(await romeo.follow(juliet.jid), "pending");
    assert.equal(await paris.follow(juliet.jid), "pending");
    const requests = await juliet.followRequests(juliet.jid);
    assert.deepEqual(
      requests.items.filter((r) => r.subscription === "pending").map((r) => r.jid).sort(),
      [romeo.jid, paris.jid].sort(),
    );
    await juliet.approve(juliet.jid, romeo.jid);
    await juliet.refuse(juliet.jid, paris.jid);
    const roles = await romeo.subscriptions();
    assert.ok(roles.items.some((s) => s.channel === juliet.jid && s.role === "publisher"));
    await romeo.publish(juliet.jid, "approved and posting");

    assert.equal(await juliet.setRole(juliet.jid, romeo.jid, "moderator"), "moderator");
    assert.equal(await juliet.setRole(juliet.jid, romeo.jid, "follower"), "member");
    await rejects(romeo.publish(juliet.jid, "a follower without post"), 403, "forbidden");
    assert.equal(await juliet.ban(juliet.jid, romeo.jid), "outcast");
    const followers = await juliet.followers(juliet.jid);
    assert.equal(followers.items.find((f) => f.jid === romeo.jid)?.role, "outcast");
    await rejects(romeo.posts(juliet.jid), 403, "banned");
    await rejects(romeo.setRole(juliet.jid, paris.jid, "moderator"), 403, "forbidden");
  });
});

describe("search and sync", () => {
  test("search posts and channels", async () => {
    const juliet = await user("juliet");
    const word = uniqueName("nightingale");
    await juliet.publish(juliet.jid, `It was the ${word}, and not the lark`);
    const posts = await juliet.searchPosts(word);
    assert.equal(posts.count, 1);
    assert.equal(posts.items[0].author, juliet.jid);
    assert.equal(posts.items[0].parent_simpleid, juliet.jid);
    const topic = `${uniqueName("orchard")}@topics.localhost`;
    await juliet.createChannel(topic, { title: `The ${word} orchard` });
    const channels = await new Buddycloud({ url: server.url }).searchChannels(word);
    assert.deepEqual(channels.items.map((c) => c.jid), [topic]);
    assert.equal(channels.index, 0);
  });

  test("sync: what is new in followed channels, and its summary", async () => {
    const juliet = await user("juliet");
    const romeo = await user("romeo");
    await romeo.follow(juliet.jid);
    const since = new Date(Date.now() - 1000);
    await juliet.publish(juliet.jid, `hello ${romeo.jid}`);
    await juliet.publish(juliet.jid, "hello world");
    const node = `/user/${juliet.jid}/posts`;
    const news = await romeo.sync({ since, max: 10 });
    assert.deepEqual(news[node].map((p) => p.content), ["hello world", `hello ${romeo.jid}`]);
    const summary = await romeo.sync({ since: since.toISOString(), max: 10, summary: true });
    assert.equal(summary[node].totalCount, 2);
    assert.equal(summary[node].mentionsCount, 1);
  });
});
