// Types of the Buddycloud JavaScript SDK (src/index.js). The JSON shapes are those of the
// server's REST API (docs/http.md) and websocket (docs/websocket.md).

/** A WebSocket as browsers, Node 22 and the `ws` package have it. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason?: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

/**
 * A WebSocket constructor whose instances behave as `WebSocketLike`: the browser's, Node 22's,
 * or the `ws` package's. Node implementations (`ws`, undici) also take `{headers}`, which a
 * Basic sign-in needs; a browser's signs in with a token in the URL.
 */
export type WebSocketConstructor = new (url: string, ...rest: any[]) => unknown;

export type FetchLike = (
  url: string,
  init: { method: string; headers: Record<string, string>; body?: string },
) => Promise<Response>;

/** A token sign-in, as `client.session` gives it: keep it to sign in again after a reload. */
export interface Session {
  token: string;
  jid: string;
  /** When the token expires, in milliseconds since 1970. */
  expiresAt: number;
  /** The token's lifetime when it was issued, in milliseconds. */
  lifetime: number;
}

export interface ClientOptions {
  /** The server's address, e.g. "https://example.org" (with or without /api). */
  url: string;
  /** Sign in with HTTP Basic from the start (no request is made to check it). */
  username?: string;
  password?: string;
  /** A token session kept from an earlier sign-in. */
  session?: Pick<Session, "token"> & Partial<Session>;
  /** Called with the session after each sign-in and refresh, and with null after sign-out. */
  onSession?: (session: Session | null) => void;
  /** The WebSocket implementation for live events; default: the global one. */
  WebSocket?: WebSocketConstructor;
  /** The fetch implementation; default: the global one. */
  fetch?: FetchLike;
}

export type SignInMethod = "auto" | "token" | "basic";

/** An error answer of the server (status and error name, docs/errors.md), or no answer (status 0). */
export class BuddycloudError extends Error {
  constructor(status: number, error: string, message: string, extra?: { retryAfter?: number | null; cause?: unknown });
  readonly name: "BuddycloudError";
  /** The HTTP status; 0 when the server could not be reached or on a websocket error. */
  readonly status: number;
  /** The server's error name: "item-not-found", "not-authorized", "forbidden", "conflict"... */
  readonly error: string;
  /** Seconds to wait before trying again (429), or null. */
  readonly retryAfter: number | null;
}

/** A post (reference 9.1, "Entry JSON"). */
export interface Entry {
  id: string;
  author: string;
  /** ISO-8601. */
  published: string;
  updated: string;
  /** null for a payload of another type (see `payload`). */
  content: string | null;
  media: Media[] | null;
  /** The parent's id, for a reply. */
  replyTo?: string;
  /** The XML of a payload that is not an Atom entry (geoloc, keys, application nodes). */
  payload?: string;
  /** `<channel>/<node>`, in live events and notifications. */
  source?: string;
}

export interface Media {
  id: string;
  channel: string;
}

/** What `publish` takes: only `content` is needed. */
export interface NewPost {
  content: string;
  title?: string | null;
  replyTo?: string | null;
  media?: Media[] | null;
}

/** A page and its XEP-0059 paging: older with `{after: last}`, newer with `{before: first}`. */
export interface Page<T> {
  items: T[];
  first: string | null;
  last: string | null;
  /** How many there are in all (deleted posts included), or null when the server did not say. */
  count: number | null;
}

export interface Paging {
  max?: number;
  after?: string | null;
  /** An empty string asks for the last page. */
  before?: string | null;
}

export interface NodeOptions {
  /** The node: "posts" (the default), "status", "geoloc" or an application node. */
  node?: string;
}

export interface Thread {
  id: string;
  updated: string;
  items: Entry[];
}

export type AccessModel = "open" | "authorize" | "whitelist" | "local";
export type Role = "owner" | "moderator" | "publisher" | "member" | "none" | "outcast";
/** Roles as they may be asked for: the original API's names too. */
export type RoleName = Role | "follower+post" | "follower" | "banned";
export type SubscriptionState = "subscribed" | "pending" | "invited" | "none";

export interface Metadata {
  title: string;
  description: string;
  access_model: AccessModel;
  creation_date: string;
  channel_type: "personal" | "topic" | string;
  default_affiliation: Role;
}

export interface MetadataChanges {
  title?: string;
  description?: string;
  access_model?: AccessModel;
  default_affiliation?: RoleName;
}

export interface Subscription {
  channel: string;
  node: string;
  /** The role, or "pending"/"invited" while the follow is not accepted. */
  role: Role | "pending" | "invited";
}

export interface Follower {
  jid: string;
  role: Role;
}

export interface Follow {
  jid: string;
  subscription: SubscriptionState;
}

export interface PostHit {
  id: string;
  author: string;
  content: string;
  published: string;
  updated: string;
  /** The node, /user/<channel>/<node>. */
  parent_fullid: string;
  /** The channel. */
  parent_simpleid: string;
  in_reply_to: string | null;
}

export interface ChannelHit {
  jid: string;
  title: string;
  description: string;
  creationDate: string;
  channelType: string;
  defaultAffiliation: string;
}

export interface SearchResults<T> {
  items: T[];
  /** How many results were skipped. */
  index: number;
  /** How many match in all. */
  count: number;
}

export interface SearchOptions {
  max?: number;
  index?: number;
}

export interface SyncSummary {
  mentionsCount: number;
  totalCount: number;
  lastPost?: string;
  lastMention?: string;
}

export interface RestAnswer {
  status: number;
  headers: Headers | Record<string, string>;
  body: any;
}

export interface RequestOptions {
  query?: Record<string, string | string[]>;
  /** JSON, or a string sent as it is (set Content-Type in `headers`). */
  body?: unknown;
  headers?: Record<string, string>;
}

export interface RatingSummary {
  count: number;
  average: number | null;
  byAuthor: Record<string, number>;
}

/** The stars of a rating entry (1 to 5), or null for any other entry. */
export function ratingOf(entry: Entry): number | null;
/** The ratings among replies: how many, their average, and each author's. */
export function summarizeRatings(replies: Entry[]): RatingSummary;

export class Buddycloud {
  constructor(options: ClientOptions);
  /** The server's address without /api. */
  readonly url: string;
  /** The signed-in user's JID, or null for an anonymous guest. */
  jid: string | null;
  readonly method: "token" | "basic" | null;
  readonly session: Session | null;

  signIn(credentials: { username: string; password: string; method?: SignInMethod }): Promise<string>;
  resumeSession(session: Pick<Session, "token"> & Partial<Session>): void;
  refresh(): Promise<Session | null>;
  signOut(): Promise<void>;

  request(method: "GET" | "POST" | "PUT" | "DELETE", path: string, options?: RequestOptions): Promise<RestAnswer>;

  register(account: { username: string; password: string; email: string }): Promise<string>;
  changePassword(password: string): Promise<void>;
  deleteAccount(): Promise<void>;

  createChannel(channel: string, settings?: MetadataChanges): Promise<Metadata>;
  deleteChannel(channel: string): Promise<void>;
  createNode(channel: string, node: string): Promise<Metadata>;
  deleteNode(channel: string, node: string): Promise<void>;
  metadata(channel: string, options?: NodeOptions): Promise<Metadata>;
  updateMetadata(channel: string, changes: MetadataChanges, options?: NodeOptions): Promise<Metadata>;

  posts(channel: string, options?: NodeOptions & Paging): Promise<Page<Entry>>;
  post(channel: string, id: string, options?: NodeOptions): Promise<Entry>;
  publish(channel: string, post: NewPost | string, options?: NodeOptions): Promise<Entry>;
  reply(channel: string, parentId: string, post: Omit<NewPost, "replyTo"> | string, options?: NodeOptions): Promise<Entry>;
  replace(channel: string, post: NewPost | string, options?: NodeOptions): Promise<Entry>;
  deletePost(channel: string, id: string, options?: NodeOptions): Promise<void>;
  replies(channel: string, id: string, options?: NodeOptions & Paging): Promise<Page<Entry>>;
  threads(channel: string, options?: NodeOptions & Paging): Promise<Page<Thread>>;
  rate(channel: string, postId: string, stars: 1 | 2 | 3 | 4 | 5, options?: NodeOptions): Promise<Entry>;

  subscriptions(paging?: Paging): Promise<Page<Subscription>>;
  follow(channel: string): Promise<Role | "pending">;
  unfollow(channel: string): Promise<void>;
  followers(channel: string, options?: NodeOptions & Paging): Promise<Page<Follower>>;
  setRoles(channel: string, roles: Record<string, RoleName>, options?: NodeOptions): Promise<Record<string, Role>>;
  setRole(channel: string, jid: string, role: RoleName, options?: NodeOptions): Promise<Role>;
  ban(channel: string, jid: string, options?: NodeOptions): Promise<Role>;
  followRequests(channel: string, options?: NodeOptions & Paging): Promise<Page<Follow>>;
  setSubscriptions(channel: string, changes: Follow[], options?: NodeOptions): Promise<Follow[]>;
  approve(channel: string, jid: string, options?: NodeOptions): Promise<Follow[]>;
  refuse(channel: string, jid: string, options?: NodeOptions): Promise<Follow[]>;
  invite(channel: string, jid: string, options?: NodeOptions): Promise<Follow[]>;

  searchPosts(q: string, options?: SearchOptions): Promise<SearchResults<PostHit>>;
  searchChannels(q: string, options?: SearchOptions): Promise<SearchResults<ChannelHit>>;
  sync(options: { since: Date | string; max?: number; summary?: false }): Promise<Record<string, Entry[]>>;
  sync(options: { since: Date | string; max?: number; summary: true }): Promise<Record<string, SyncSummary>>;

  live(options?: LiveOptions): Live;
}

// --- live events ---------------------------------------------------------------------------------

export interface LiveOptions {
  /** Start after this cursor (kept from an earlier connection) instead of now. */
  cursor?: number | null;
  /** Milliseconds between the client's pings (default 25,000). */
  pingInterval?: number;
  /** Milliseconds to wait for a pong before reconnecting (default 10,000). */
  pongTimeout?: number;
  /** Reconnect after min, doubling up to max milliseconds (default 500 and 30,000). */
  reconnectDelay?: { min?: number; max?: number };
}

interface EventBase {
  /** Grows with every event; what a reconnect resumes from. */
  cursor: number;
  channel: string;
}

export interface PostEvent extends EventBase {
  type: "post";
  node: string;
  /** An edit of an existing item. */
  update: boolean;
  entry: Entry & { source: string };
}
export interface RetractEvent extends EventBase {
  type: "retract";
  node: string;
  id: string;
}
export interface SubscriptionEvent extends EventBase {
  type: "subscription";
  jid: string;
  subscription: SubscriptionState;
  invitedBy?: string;
}
export interface AffiliationEvent extends EventBase {
  type: "affiliation";
  jid: string;
  affiliation: Role;
}
export interface ConfigurationEvent extends EventBase {
  type: "configuration";
  nodes: string[];
  metadata: Metadata;
}
export interface NodeDeletedEvent extends EventBase {
  type: "node-deleted";
  node: string;
}
export interface FollowRequestEvent extends EventBase {
  type: "follow-request";
  node: string;
  jid: string;
}
export type LiveEvent =
  | PostEvent
  | RetractEvent
  | SubscriptionEvent
  | AffiliationEvent
  | ConfigurationEvent
  | NodeDeletedEvent
  | FollowRequestEvent;

export interface Welcome {
  type: "welcome";
  jid: string;
  cursor: number;
  heartbeat: { interval: number; timeout: number };
  limits: { queue: number; frame: number; requests: number };
}
export interface Resumed {
  type: "resumed";
  cursor: number;
  replayed: number;
}
export interface Resync {
  type: "resync";
  cursor: number;
  reason: string;
}

/** "online" once signed in; "offline" between a lost connection and the next try. */
export type LiveState = "connecting" | "online" | "offline" | "closed";

export interface LiveEventMap {
  post: PostEvent;
  retract: RetractEvent;
  subscription: SubscriptionEvent;
  affiliation: AffiliationEvent;
  configuration: ConfigurationEvent;
  "node-deleted": NodeDeletedEvent;
  "follow-request": FollowRequestEvent;
  /** Every live event, whatever its type. */
  event: LiveEvent;
  welcome: Welcome;
  resumed: Resumed;
  /** Events were lost (too old to replay): reload what is shown. */
  resync: Resync;
  state: LiveState;
  error: Error;
}

export class Live {
  /** The highest cursor received: pass it to `live({cursor})` to resume later. */
  readonly cursor: number | null;
  readonly state: LiveState;
  on<K extends keyof LiveEventMap>(type: K, handler: (value: LiveEventMap[K]) => void): () => void;
  next<K extends keyof LiveEventMap>(type: K, timeout?: number): Promise<LiveEventMap[K]>;
  /** A REST request over the socket, as the socket's user. */
  request(method: "GET" | "POST" | "PUT" | "DELETE", path: string, options?: RequestOptions): Promise<RestAnswer>;
  close(): void;
}
