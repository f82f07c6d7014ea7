// Checked by `tsc --noEmit` (npm test): the SDK's types as a web page or Node program uses them.
import { WebSocket as NodeWebSocket } from "ws";

import {
  Buddycloud,
  BuddycloudError,
  ratingOf,
  summarizeRatings,
  type Entry,
  type LiveEvent,
  type Metadata,
  type Page,
  type Session,
} from "../src/index.js";

export async function example(): Promise<void> {
  let kept: Session | null = null;
  const client = new Buddycloud({
    url: "https://example.org",
    WebSocket: NodeWebSocket,
    onSession: (session) => {
      kept = session;
    },
  });
  const jid: string = await client.signIn({ username: "juliet", password: "secret password" });
  const browser = new Buddycloud({ url: "https://example.org", WebSocket: globalThis.WebSocket });
  if (kept) browser.resumeSession(kept);

  const page: Page<Entry> = await client.posts(jid, { max: 20 });
  const older = await client.posts(jid, { after: page.last });
  const count: number | null = older.count;
  const post = await client.publish(jid, { content: "hello", media: [{ id: "photo", channel: jid }] });
  await client.reply(jid, post.id, "a reply");
  const rating = await client.rate(jid, post.id, 5);
  const stars: number | null = ratingOf(rating);
  const summary = summarizeRatings((await client.replies(jid, post.id)).items);
  const average: number | null = summary.average;
  const threads = await client.threads(jid);
  const firstThread: Entry[] = threads.items[0]?.items ?? [];

  const metadata: Metadata = await client.updateMetadata(jid, { access_model: "authorize", default_affiliation: "follower" });
  const role = await client.setRole(jid, "romeo@example.org", "follower+post");
  const banned: "outcast" | string = await client.ban(jid, "tybalt@example.org");
  const follows = await client.followRequests(jid);
  await client.approve(jid, follows.items[0]?.jid ?? "paris@example.org");
  const following = await client.subscriptions();
  const followRole = await client.follow("balcony@topics.example.org");

  const found = await client.searchPosts("romeo");
  const author: string | undefined = found.items[0]?.author;
  const channels = await client.searchChannels("verona", { max: 10, index: 0 });
  const news = await client.sync({ since: new Date(), max: 10 });
  const entries: Entry[] | undefined = news["/user/juliet@example.org/posts"];
  const counts = await client.sync({ since: "2026-01-01T00:00:00Z", summary: true });
  const mentions: number | undefined = counts["/user/juliet@example.org/posts"]?.mentionsCount;

  const live = client.live({ cursor: null, pingInterval: 25000 });
  const stop = live.on("post", (event) => {
    const content: string | null = event.entry.content;
    const cursor: number = event.cursor;
    void content;
    void cursor;
  });
  live.on("event", (event: LiveEvent) => {
    if (event.type === "follow-request") void event.jid;
    if (event.type === "configuration") void event.metadata.title;
  });
  live.on("resync", (message) => void message.cursor);
  live.on("state", (state) => {
    if (state === "offline") void state;
  });
  const resumed = await live.next("resumed");
  const answer = await live.request("GET", `/api/${jid}/content/posts`, { query: { max: "5" } });
  stop();
  live.close();

  try {
    await client.post(jid, "missing");
  } catch (error) {
    if (error instanceof BuddycloudError) {
      const status: number = error.status;
      const name: string = error.error;
      void [status, name, error.retryAfter];
    }
  }
  await client.signOut();
  void [count, stars, average, firstThread, metadata, role, banned, following, followRole, author, channels, entries, mentions, resumed, answer];
}
