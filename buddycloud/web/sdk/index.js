// The Buddycloud channel server's JavaScript SDK: its REST API (docs/http.md), sign-in by
// password or token, and live events over /api/ws (docs/websocket.md) with automatic
// reconnect and resume. No dependencies: fetch and WebSocket, as browsers and Node have
// them (pass a WebSocket implementation where the platform has none).

const JSON_TYPE = "application/json";
const ATOM_TYPE = "application/atom+xml";
const NS_ATOM = "http://www.w3.org/2005/Atom";
const NS_THREAD = "http://purl.org/syndication/thread/1.0";
const NS_ACTIVITY = "http://activitystrea.ms/spec/1.0/";
const NS_REVIEW = "http://activitystrea.ms/schema/1.0/review";
// A token is refreshed when less than this share of its lifetime is left.
const REFRESH_AT = 0.25;

/** An answer of the server that is not a success, or a request that got no answer. */
export class BuddycloudError extends Error {
  /**
   * @param {number} status the HTTP status; 0 when the server could not be reached
   * @param {string} error the server's error name (docs/errors.md), e.g. "item-not-found"
   * @param {string} message what was wrong, as the server said it
   * @param {{retryAfter?: number | null, cause?: unknown}} [extra]
   */
  constructor(status, error, message, extra = {}) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = "BuddycloudError";
    this.status = status;
    this.error = error;
    this.retryAfter = extra.retryAfter ?? null;
  }
}

// --- small helpers ---------------------------------------------------------------------------

/** A path segment: percent-encoded, but `@` and `:` kept as JIDs are written. */
function segment(value) {
  if (typeof value !== "string" || value === "") {
    throw new TypeError(`expected a non-empty string, got ${JSON.stringify(value)}`);
  }
  return encodeURIComponent(value).replace(/%40/g, "@").replace(/%3A/gi, ":");
}

function decodeCursor(value) {
  if (value === null || value === undefined) return null;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

function pagingQuery(options = {}) {
  const query = {};
  if (options.max !== undefined && options.max !== null) query.max = String(options.max);
  if (options.after !== undefined && options.after !== null) query.after = options.after;
  if (options.before !== undefined && options.before !== null) query.before = options.before;
  return query;
}

function pageOf(items, headers) {
  const count = headers.get("x-count");
  return {
    items,
    first: decodeCursor(headers.get("x-first")),
    last: decodeCursor(headers.get("x-last")),
    count: count === null ? null : Number(count),
  };
}

function escapeXml(text) {
  return String(text).replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function base64(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** `<channel>/<node>` split at its first `/`. */
function splitSource(key) {
  const at = key.indexOf("/");
  return at < 0 ? { channel: key, node: "posts" } : { channel: key.slice(0, at), node: key.slice(at + 1) };
}

const RATING = /^rating:([1-5])\.0$/;

/**
 * The stars of a rating (a reply the server stored as a rating, ProtoXEP 6.3.4), or null for
 * any other entry. JSON carries a rating as the content `rating:<n>.0` of a reply.
 */
export function ratingOf(entry) {
  if (!entry || typeof entry.content !== "string" || !entry.replyTo) return null;
  const match = RATING.exec(entry.content);
  return match ? Number(match[1]) : null;
}

/** The ratings among `replies`: how many, their average (null when none), and by author. */
export function summarizeRatings(replies) {
  const byAuthor = {};
  let total = 0;
  let count = 0;
  for (const reply of replies) {
    const stars = ratingOf(reply);
    if (stars === null) continue;
    byAuthor[reply.author] = stars;
    total += stars;
    count += 1;
  }
  return { count, average: count ? total / count : null, byAuthor };
}

// --- the client ------------------------------------------------------------------------------

/** A client of one Buddycloud server, signed in as one user or as an anonymous guest. */
export class Buddycloud {
  /**
   * @param {import("./index.js").ClientOptions} options
   */
  constructor(options) {
    if (!options || typeof options.url !== "string") {
      throw new TypeError("new Buddycloud({url}): url is the server's address, e.g. https://example.org");
    }
    this.url = options.url.replace(/\/+$/, "").replace(/\/api$/, "");
    this._fetch = options.fetch ?? globalThis.fetch?.bind(globalThis);
    if (!this._fetch) throw new TypeError("no fetch: pass options.fetch");
    this._WebSocket = options.WebSocket ?? globalThis.WebSocket ?? null;
    this._onSession = options.onSession ?? null;
    this._basic = null;
    this._session = null;
    this._refreshing = null;
    this.jid = null;
    if (options.username !== undefined || options.password !== undefined) {
      this._useBasic(options.username, options.password);
    }
    if (options.session) this.resumeSession(options.session);
  }

  // --- signing in ------------------------------------------------------------------------------

  /** How requests are signed in now: "token", "basic" or null (an anonymous guest). */
  get method() {
    if (this._session) return "token";
    if (this._basic) return "basic";
    return null;
  }

  /** The token session (to keep across page loads with resumeSession), or null. */
  get session() {
    return this._session ? { ...this._session } : null;
  }

  _useBasic(username, password) {
    if (typeof username !== "string" || typeof password !== "string") {
      throw new TypeError("a sign-in needs a username and a password, both strings");
    }
    this._basic = `Basic ${base64(`${username}:${password}`)}`;
    this._username = username;
    this.jid = username.includes("@") ? username : null;
  }

  _setSession(answer) {
    const expiresIn = Number(answer.expires_in);
    this._session = {
      token: answer.token,
      jid: answer.jid,
      expiresAt: Date.now() + expiresIn * 1000,
      lifetime: expiresIn * 1000,
    };
    this.jid = answer.jid;
    this._onSession?.(this.session);
  }

  _clearSession() {
    const had = this._session !== null;
    this._session = null;
    if (had) this._onSession?.(null);
  }

  /**
   * Sign in. `method` "token" asks the server for a bearer token (POST /api/auth/token),
   * which is refreshed while the session lasts; "basic" sends the password with every request
   * (HTTP Basic); "auto" (the default) takes a token where the server gives them, else Basic.
   * Wrong credentials throw a BuddycloudError with status 401, error "not-authorized" or
   * "not-authenticated".
   */
  async signIn({ username, password, method = "auto" }) {
    if (typeof username !== "string" || typeof password !== "string") {
      throw new TypeError("signIn({username, password}): both are strings");
    }
    if (!["auto", "token", "basic"].includes(method)) {
      throw new TypeError(`signIn: method is "auto", "token" or "basic", not ${JSON.stringify(method)}`);
    }
    this._basic = null;
    this._clearSession();
    this.jid = null;
    if (method !== "basic") {
      try {
        const answer = await this._call("POST", "/api/auth/token", {
          body: { username, password },
          auth: "none",
        });
        this._setSession(answer.body);
        return this.jid;
      } catch (error) {
        // A server without tokens has no such endpoint: sign in with Basic instead.
        const noTokens =
          error instanceof BuddycloudError && (error.status === 404 || error.status === 405);
        if (method === "token" || !noTokens) throw error;
      }
    }
    this._useBasic(username, password);
    try {
      await this._call("GET", "/api");
      if (this.jid === null) this.jid = await this._ownJid(username);
    } catch (error) {
      this._basic = null;
      this.jid = null;
      throw error;
    }
    return this.jid;
  }

  /** The JID of a user who signed in with a bare username: their own personal channel. */
  async _ownJid(username) {
    const answer = await this._call("GET", "/api/subscribed", { query: { max: "1000" } });
    for (const [key, role] of Object.entries(answer.body ?? {})) {
      const { channel, node } = splitSource(key);
      if (node === "posts" && role === "owner" && channel.startsWith(`${username}@`)) return channel;
    }
    return username;
  }

  /** Use a token session kept from an earlier sign-in (see `session`). */
  resumeSession(session) {
    if (!session || typeof session.token !== "string") {
      throw new TypeError("resumeSession({token, jid, expiresAt}): token is a string");
    }
    this._basic = null;
    this._session = {
      token: session.token,
      jid: session.jid,
      expiresAt: Number(session.expiresAt ?? Date.now()),
      lifetime: Number(session.lifetime ?? 0),
    };
    this.jid = session.jid ?? null;
  }

  /** A fresh token for the session now (POST /api/auth/token with the current token). */
  async refresh() {
    if (!this._session) throw new BuddycloudError(401, "not-authenticated", "no token session to refresh");
    if (!this._refreshing) {
      this._refreshing = (async () => {
        try {
          const answer = await this._call("POST", "/api/auth/token", { auth: "bearer" });
          this._setSession(answer.body);
        } catch (error) {
          if (error instanceof BuddycloudError && error.status === 401) this._clearSession();
          throw error;
        } finally {
          this._refreshing = null;
        }
      })();
    }
    await this._refreshing;
    return this.session;
  }

  async _freshToken() {
    const session = this._session;
    if (!session) return null;
    const left = session.expiresAt - Date.now();
    if (left < Math.max(5000, session.lifetime * REFRESH_AT)) await this.refresh();
    return this._session?.token ?? null;
  }

  /**
   * Sign out: a token session is revoked on the server (DELETE /api/auth/token); a Basic
   * sign-in is forgotten. The client is an anonymous guest afterwards.
   */
  async signOut() {
    if (this._session) {
      try {
        await this._call("DELETE", "/api/auth/token", { auth: "bearer" });
      } catch (error) {
        // Already over on the server: signed out all the same.
        if (!(error instanceof BuddycloudError && error.status === 401)) throw error;
      }
    }
    this._clearSession();
    this._basic = null;
    this.jid = null;
  }

  // --- requests ----------------------------------------------------------------------------------

  async _authorization(auth) {
    if (auth === "none") return null;
    if (auth === "bearer") return this._session ? `Bearer ${this._session.token}` : null;
    if (this._session) {
      const token = await this._freshToken();
      return token ? `Bearer ${token}` : null;
    }
    return this._basic;
  }

  /**
   * One request of the REST API as the signed-in user: `path` starts with /api. The answer's
   * status, headers and body (parsed JSON, text, or null). Throws BuddycloudError for any
   * status of 400 and above.
   */
  async request(method, path, { query, body, headers } = {}) {
    return this._call(method, path, { query, body, headers });
  }

  async _call(method, path, { query, body, headers = {}, auth = "default", retried = false } = {}) {
    let url = this.url + path;
    if (query) {
      const params = new URLSearchParams();
      for (const [name, value] of Object.entries(query)) {
        if (value === undefined || value === null) continue;
        for (const one of Array.isArray(value) ? value : [value]) params.append(name, String(one));
      }
      const text = params.toString();
      if (text) url += (url.includes("?") ? "&" : "?") + text;
    }
    const sent = { Accept: JSON_TYPE, ...headers };
    const authorization = await this._authorization(auth);
    if (authorization) sent.Authorization = authorization;
    let payload;
    if (body !== undefined) {
      if (typeof body === "string") {
        payload = body;
      } else {
        payload = JSON.stringify(body);
        sent["Content-Type"] ??= JSON_TYPE;
      }
    }
    let response;
    try {
      response = await this._fetch(url, { method, headers: sent, body: payload });
    } catch (cause) {
      throw new BuddycloudError(0, "network-error", `${method} ${path}: the server could not be reached`, { cause });
    }
    const text = await response.text();
    const type = response.headers.get("content-type") ?? "";
    let parsed = null;
    if (text) {
      parsed = text;
      if (type.includes("json")) {
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = text;
        }
      }
    }
    if (response.status >= 400) {
      // An expired token: refresh it once and ask again.
      if (response.status === 401 && auth === "default" && this._session && !retried) {
        let refreshed = false;
        try {
          await this.refresh();
          refreshed = true;
        } catch {
          // The session is over: answer the original 401.
        }
        if (refreshed) return this._call(method, path, { query, body, headers, auth, retried: true });
      }
      const retryAfter = response.headers.get("retry-after");
      const error = parsed && typeof parsed === "object" ? parsed : {};
      throw new BuddycloudError(
        response.status,
        typeof error.error === "string" ? error.error : `http-${response.status}`,
        typeof error.message === "string" ? error.message : `${method} ${path} answered ${response.status}`,
        { retryAfter: retryAfter === null ? null : Number(retryAfter) },
      );
    }
    return { status: response.status, headers: response.headers, body: parsed };
  }

  // --- accounts ------------------------------------------------------------------------------------

  /** Create an account on the server's built-in user database; its JID. Does not sign in. */
  async register({ username, password, email }) {
    const answer = await this._call("POST", "/api/account", {
      body: { username, password, email },
      auth: "none",
    });
    return answer.body.username;
  }

  /** Change the signed-in user's password; a Basic sign-in goes on with the new one. */
  async changePassword(password) {
    await this._call("POST", "/api/account/pw/change", { body: { password } });
    if (this._basic) {
      const jid = this.jid;
      this._useBasic(this._username, password);
      this.jid = jid;
    }
  }

  /** Delete the signed-in user's account with their channels, posts and follows. */
  async deleteAccount() {
    await this._call("DELETE", "/api/account");
    this._clearSession();
    this._basic = null;
    this.jid = null;
  }

  // --- channels and nodes ----------------------------------------------------------------------------

  /** Create a topic channel (`<name>@<topics domain>`) owned by the signed-in user; its metadata. */
  async createChannel(channel, settings = {}) {
    return (await this._call("POST", `/api/${segment(channel)}`, { body: settings })).body;
  }

  /** Delete a channel with all its nodes and posts (its owner only). */
  async deleteChannel(channel) {
    await this._call("DELETE", `/api/${segment(channel)}`);
  }

  /** Create an application node in a channel (its owner only); the channel's metadata. */
  async createNode(channel, node) {
    return (await this._call("POST", `/api/${segment(channel)}/${segment(node)}`)).body;
  }

  /** Delete a node of a channel; `posts` takes the whole channel with it. */
  async deleteNode(channel, node) {
    await this._call("DELETE", `/api/${segment(channel)}/${segment(node)}`);
  }

  /** A channel's metadata and settings: title, description, access model, default role... */
  async metadata(channel, { node = "posts" } = {}) {
    return (await this._call("GET", `/api/${segment(channel)}/metadata/${segment(node)}`)).body;
  }

  /** Change a channel's metadata and settings; the metadata as it now is. */
  async updateMetadata(channel, changes, { node = "posts" } = {}) {
    return (await this._call("POST", `/api/${segment(channel)}/metadata/${segment(node)}`, { body: changes })).body;
  }

  // --- posts -------------------------------------------------------------------------------------------

  _content(channel, node) {
    return `/api/${segment(channel)}/content/${segment(node)}`;
  }

  /**
   * A page of a node's posts, newest activity first, with `first`, `last` and `count`.
   * Older posts: `{after: page.last}`; newer: `{before: page.first}`; the oldest page:
   * `{before: ""}`.
   */
  async posts(channel, { node = "posts", ...paging } = {}) {
    const answer = await this._call("GET", this._content(channel, node), { query: pagingQuery(paging) });
    return pageOf(answer.body, answer.headers);
  }

  /** One post; a BuddycloudError 404 "item-not-found" when it does not exist. */
  async post(channel, id, { node = "posts" } = {}) {
    return (await this._call("GET", `${this._content(channel, node)}/${segment(id)}`)).body;
  }

  /** Publish a post (`{content, title, replyTo, media}`); the post as stored, with its id. */
  async publish(channel, post, { node = "posts" } = {}) {
    const body = typeof post === "string" ? { content: post } : post;
    return (await this._call("POST", this._content(channel, node), { body })).body;
  }

  /** Reply to a post (threads are one level deep: reply to the parent, not to a reply). */
  async reply(channel, parentId, post, { node = "posts" } = {}) {
    const body = typeof post === "string" ? { content: post } : post;
    return this.publish(channel, { ...body, replyTo: parentId }, { node });
  }

  /** Replace the node's newest post (PUT, "replace current": for `status` and the like). */
  async replace(channel, post, { node = "posts" } = {}) {
    const body = typeof post === "string" ? { content: post } : post;
    return (await this._call("PUT", this._content(channel, node), { body })).body;
  }

  /** Delete (retract) a post: its author, the channel's owner or a moderator. */
  async deletePost(channel, id, { node = "posts" } = {}) {
    await this._call("DELETE", `${this._content(channel, node)}/${segment(id)}`);
  }

  /** A page of the replies to a post, newest first. */
  async replies(channel, id, { node = "posts", ...paging } = {}) {
    const answer = await this._call("GET", `${this._content(channel, node)}/${segment(id)}/replyto`, {
      query: pagingQuery(paging),
    });
    return pageOf(answer.body, answer.headers);
  }

  /** A page of threads (`{id, updated, items}`: a post and its replies), most active first. */
  async threads(channel, { node = "posts", ...paging } = {}) {
    const answer = await this._call("GET", `${this._content(channel, node)}/threads`, {
      query: pagingQuery(paging),
    });
    return pageOf(answer.body, answer.headers);
  }

  /**
   * Rate a post from 1 to 5 stars: a reply the server keeps as a rating (one per user and
   * post). The rating as stored; `ratingOf` reads the stars of an entry.
   */
  async rate(channel, postId, stars, { node = "posts" } = {}) {
    if (!Number.isInteger(stars) || stars < 1 || stars > 5) {
      throw new RangeError("a rating is an integer from 1 to 5");
    }
    const id = escapeXml(postId);
    const entry =
      `<entry xmlns="${NS_ATOM}" xmlns:thr="${NS_THREAD}" xmlns:activity="${NS_ACTIVITY}" xmlns:review="${NS_REVIEW}">` +
      `<content>rating:${stars}.0</content><thr:in-reply-to ref="${id}"/>` +
      `<activity:target><id>${id}</id></activity:target><review:rating>${stars}</review:rating></entry>`;
    const answer = await this._call("POST", this._content(channel, node), {
      body: entry,
      headers: { "Content-Type": ATOM_TYPE },
    });
    return answer.body;
  }

  // --- following -------------------------------------------------------------------------------------

  /**
   * What the signed-in user follows: a page of `{channel, node, role}`, role being `pending`
   * or `invited` while a follow is not accepted.
   */
  async subscriptions(paging = {}) {
    const answer = await this._call("GET", "/api/subscribed", { query: pagingQuery(paging) });
    const items = Object.entries(answer.body ?? {}).map(([key, role]) => ({ ...splitSource(key), role }));
    return pageOf(items, answer.headers);
  }

  /** Follow a channel (all its nodes); the role now held, or "pending" for a closed channel. */
  async follow(channel) {
    const key = `${channel}/posts`;
    const answer = await this._call("POST", "/api/subscribed", { body: { [key]: "follower" } });
    return answer.body[key];
  }

  /** Stop following a channel. */
  async unfollow(channel) {
    const key = `${channel}/posts`;
    await this._call("POST", "/api/subscribed", { body: { [key]: "none" } });
  }

  /** A page of a channel's followers and their roles: `{jid, role}`. */
  async followers(channel, { node = "posts", ...paging } = {}) {
    const answer = await this._call("GET", `/api/${segment(channel)}/subscribers/${segment(node)}`, {
      query: pagingQuery(paging),
    });
    const items = Object.entries(answer.body ?? {}).map(([jid, role]) => ({ jid, role }));
    return pageOf(items, answer.headers);
  }

  /** Change roles: `{jid: role}` (owner, moderator, publisher, member, none, outcast); the new roles. */
  async setRoles(channel, roles, { node = "posts" } = {}) {
    const answer = await this._call("POST", `/api/${segment(channel)}/subscribers/${segment(node)}`, {
      body: roles,
    });
    return answer.body;
  }

  /** Give one user a role; the role they now have. */
  async setRole(channel, jid, role, options = {}) {
    return (await this.setRoles(channel, { [jid]: role }, options))[jid];
  }

  /** Ban a user from a channel (role `outcast`); their follow ends. */
  async ban(channel, jid, options = {}) {
    return this.setRole(channel, jid, "outcast", options);
  }

  /** A page of the channel's follows, `{jid, subscription}`; pending requests for owners and moderators. */
  async followRequests(channel, { node = "posts", ...paging } = {}) {
    const answer = await this._call("GET", `/api/${segment(channel)}/subscribers/${segment(node)}/approve`, {
      query: pagingQuery(paging),
    });
    return pageOf(answer.body, answer.headers);
  }

  /** Set follows: `[{jid, subscription}]` with subscribed (approve), none (refuse) or invited. */
  async setSubscriptions(channel, changes, { node = "posts" } = {}) {
    const answer = await this._call("POST", `/api/${segment(channel)}/subscribers/${segment(node)}/approve`, {
      body: changes,
    });
    return answer.body;
  }

  /** Approve a follow request. */
  async approve(channel, jid, options = {}) {
    return this.setSubscriptions(channel, [{ jid, subscription: "subscribed" }], options);
  }

  /** Refuse a follow request, or remove a follower. */
  async refuse(channel, jid, options = {}) {
    return this.setSubscriptions(channel, [{ jid, subscription: "none" }], options);
  }

  /** Invite a user to follow a channel. */
  async invite(channel, jid, options = {}) {
    return this.setSubscriptions(channel, [{ jid, subscription: "invited" }], options);
  }

  // --- search and sync ---------------------------------------------------------------------------------

  async _search(type, q, { max, index } = {}) {
    const query = { type, q };
    if (max !== undefined) query.max = String(max);
    if (index !== undefined) query.index = String(index);
    const answer = await this._call("GET", "/api/search", { query });
    return { items: answer.body.items, index: answer.body.rsm.index, count: answer.body.rsm.count };
  }

  /** Posts the user may read holding every word of `q`, newest first. */
  async searchPosts(q, options = {}) {
    return this._search("content", q, options);
  }

  /** Advertised channels whose title or description hold every word of `q`. */
  async searchChannels(q, options = {}) {
    return this._search("metadata", q, options);
  }

  /**
   * What is new since `since` (a Date or ISO-8601) in every followed channel: node id ->
   * entries, newest first; with `summary: true`, counters instead.
   */
  async sync({ since, max = 50, summary = false }) {
    const query = {
      since: since instanceof Date ? since.toISOString() : String(since),
      max: String(max),
    };
    if (summary) query.summary = "true";
    return (await this._call("GET", "/api/sync", { query })).body;
  }

  // --- live events -----------------------------------------------------------------------------------

  /**
   * Live events over the websocket /api/ws, reconnecting by itself and resuming from the last
   * event received: nothing missed, nothing twice. Listen with `.on(type, handler)`.
   */
  live(options = {}) {
    return new Live(this, options);
  }

  async _socketUrl(cursor) {
    const url = new URL(this.url + "/api/ws");
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const token = await this._freshToken();
    if (token) url.searchParams.set("token", token);
    if (cursor !== null && cursor !== undefined) url.searchParams.set("cursor", String(cursor));
    return { url: url.toString(), basic: token ? null : this._basic };
  }
}

// --- the live connection -----------------------------------------------------------------------------

const EVENT_TYPES = new Set([
  "post",
  "retract",
  "subscription",
  "affiliation",
  "configuration",
  "node-deleted",
  "follow-request",
]);
// Close codes after which reconnecting cannot help (docs/websocket.md).
const CLOSE_NOT_AUTHENTICATED = 4401;

/** One live connection, kept open until `close()`. */
export class Live {
  constructor(client, options = {}) {
    this.client = client;
    this.cursor = options.cursor ?? null;
    this.state = "connecting";
    this._handlers = new Map();
    this._socket = null;
    this._closed = false;
    this._attempt = 0;
    this._timers = new Set();
    this._pingEvery = options.pingInterval ?? 25000;
    this._pongWithin = options.pongTimeout ?? 10000;
    this._delayMin = options.reconnectDelay?.min ?? 500;
    this._delayMax = options.reconnectDelay?.max ?? 30000;
    this._requests = new Map();
    this._nextId = 1;
    this._refused = null;
    this._welcomed = false;
    this._authRetried = false;
    this._connect();
  }

  /** Listen to an event type (`post`, `retract`, ..., `event` for every live event, `welcome`,
   * `resumed`, `resync`, `state`, `error`); returns a function that stops listening. */
  on(type, handler) {
    let set = this._handlers.get(type);
    if (!set) this._handlers.set(type, (set = new Set()));
    set.add(handler);
    return () => set.delete(handler);
  }

  /** Resolves with the next message of `type` (for example "resumed"), or rejects after `timeout` ms. */
  next(type, timeout = 10000) {
    return new Promise((resolve, reject) => {
      const timer = this._timer(() => {
        off();
        reject(new BuddycloudError(0, "timeout", `no ${type} within ${timeout} ms`));
      }, timeout);
      const off = this.on(type, (message) => {
        off();
        this._clearTimer(timer);
        resolve(message);
      });
    });
  }

  _emit(type, value) {
    for (const handler of [...(this._handlers.get(type) ?? [])]) {
      try {
        handler(value);
      } catch (error) {
        if (type !== "error") this._emit("error", error);
      }
    }
  }

  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    this._emit("state", state);
  }

  _timer(fn, ms) {
    const timer = setTimeout(() => {
      this._timers.delete(timer);
      fn();
    }, ms);
    this._timers.add(timer);
    return timer;
  }

  _clearTimer(timer) {
    clearTimeout(timer);
    this._timers.delete(timer);
  }

  async _connect() {
    if (this._closed) return;
    this._setState("connecting");
    this._welcomed = false;
    let socket;
    try {
      const WebSocketImpl = this.client._WebSocket;
      if (!WebSocketImpl) {
        throw new BuddycloudError(0, "no-websocket", "no WebSocket here: pass options.WebSocket to new Buddycloud()");
      }
      const { url, basic } = await this.client._socketUrl(this.cursor);
      if (this._closed) return;
      // A browser cannot set headers on a websocket: it signs in with a token in the URL.
      // Implementations that can (ws, undici) take the Authorization header of a Basic sign-in.
      try {
        socket = basic ? new WebSocketImpl(url, { headers: { Authorization: basic } }) : new WebSocketImpl(url);
      } catch (cause) {
        if (!basic) throw cause;
        throw new BuddycloudError(
          0,
          "token-required",
          "this WebSocket cannot send an Authorization header (a browser's cannot): sign in with a token",
          { cause },
        );
      }
    } catch (error) {
      this._emit("error", error);
      if (error instanceof BuddycloudError && (["no-websocket", "token-required"].includes(error.error) || error.status === 401)) {
        this._closed = true;
        this._setState("closed");
        return;
      }
      this._retry();
      return;
    }
    this._socket = socket;
    let alive = null;
    const heartbeat = () => {
      if (this._socket !== socket) return;
      this._send({ type: "ping" });
      alive = this._timer(() => {
        // No pong: the connection is gone though nobody said so. Start again.
        this._drop(socket);
      }, this._pongWithin);
    };
    let pinger = null;
    socket.onmessage = (frame) => {
      if (this._socket !== socket) return;
      let message;
      try {
        message = JSON.parse(typeof frame.data === "string" ? frame.data : String(frame.data));
      } catch {
        return;
      }
      if (message.type === "pong") {
        if (alive) this._clearTimer(alive);
        alive = null;
        pinger = this._timer(heartbeat, this._pingEvery);
        return;
      }
      this._receive(message, () => {
        pinger = this._timer(heartbeat, this._pingEvery);
      });
    };
    socket.onclose = (event) => {
      if (alive) this._clearTimer(alive);
      if (pinger) this._clearTimer(pinger);
      if (this._socket !== socket) return;
      this._socket = null;
      this._failRequests();
      if (this._closed) {
        this._setState("closed");
        return;
      }
      if (event.code === CLOSE_NOT_AUTHENTICATED) {
        this._notAuthenticated();
        return;
      }
      if (this._refused) {
        // Refused for now (the sign-in could not be checked): said, then tried again.
        this._emit("error", this._refused);
        this._refused = null;
      }
      this._setState("offline");
      this._retry();
    };
    socket.onerror = () => {
      // onclose follows and reconnects.
    };
  }

  async _notAuthenticated() {
    // An expired token: a fresh one may do; with none, or a refused one, stop.
    if (this.client._session && !this._authRetried) {
      this._authRetried = true; // once until the next welcome: a refused fresh token ends it
      try {
        await this.client.refresh();
        this._setState("offline");
        this._retry();
        return;
      } catch {
        // The session is over.
      }
    }
    this._closed = true;
    this._setState("closed");
    this._emit(
      "error",
      this._refused ?? new BuddycloudError(401, "not-authenticated", "the server refused the sign-in of the live connection"),
    );
  }

  _drop(socket) {
    if (this._socket !== socket) return;
    try {
      socket.close();
    } catch {
      // closing a broken socket
    }
    // Some implementations never fire onclose for a dead connection: do it here.
    socket.onclose?.({ code: 1006, reason: "no pong" });
  }

  _retry() {
    if (this._closed) return;
    const delay = Math.min(this._delayMax, this._delayMin * 2 ** this._attempt);
    this._attempt += 1;
    this._timer(() => this._connect(), delay * (0.75 + Math.random() * 0.5));
  }

  _receive(message, started) {
    switch (message.type) {
      case "welcome":
        this._attempt = 0;
        this._welcomed = true;
        this._refused = null;
        this._authRetried = false;
        // A resumed connection keeps its own cursor until `resumed`: the replay comes first.
        if (this.cursor === null) this.cursor = message.cursor;
        this._setState("online");
        this._emit("welcome", message);
        started();
        return;
      case "resumed":
        this._emit("resumed", message);
        return;
      case "resync":
        // What came after our cursor is no longer kept: everything after `cursor` comes.
        this.cursor = message.cursor;
        this._emit("resync", message);
        return;
      case "response": {
        const pending = this._requests.get(message.id);
        if (pending) {
          this._requests.delete(message.id);
          pending.resolve(message);
        }
        return;
      }
      case "error":
        if (message.id !== undefined && this._requests.has(message.id)) {
          const pending = this._requests.get(message.id);
          this._requests.delete(message.id);
          pending.reject(new BuddycloudError(0, message.error, message.message));
          return;
        }
        if (!this._welcomed) {
          // The sign-in was refused; the close (4401) follows, and tells it once.
          const status = { "too-many-failures": 429, "sign-in-unavailable": 503 }[message.error] ?? 401;
          this._refused = new BuddycloudError(status, message.error, message.message);
          return;
        }
        this._emit("error", new BuddycloudError(0, message.error, message.message));
        return;
      default:
        if (EVENT_TYPES.has(message.type) && typeof message.cursor === "number") {
          // Seen already (a replay overlapping what came live): never twice.
          if (this.cursor !== null && message.cursor <= this.cursor) return;
          this.cursor = message.cursor;
          this._emit(message.type, message);
          this._emit("event", message);
        }
    }
  }

  _send(message) {
    const socket = this._socket;
    if (!socket || socket.readyState !== 1) return false;
    socket.send(JSON.stringify(message));
    return true;
  }

  _failRequests() {
    for (const pending of this._requests.values()) {
      pending.reject(new BuddycloudError(0, "network-error", "the live connection closed before the answer"));
    }
    this._requests.clear();
  }

  /**
   * A REST request over the live connection (docs/websocket.md, "Requests over the socket"):
   * `{status, headers, body}`; throws BuddycloudError for a status of 400 and above.
   */
  request(method, path, { query, body, headers } = {}) {
    const id = this._nextId++;
    const message = { type: "request", id, method, path };
    if (query !== undefined) message.query = query;
    if (body !== undefined) message.body = body;
    if (headers !== undefined) message.headers = headers;
    return new Promise((resolve, reject) => {
      if (!this._send(message)) {
        reject(new BuddycloudError(0, "network-error", "the live connection is not open"));
        return;
      }
      this._requests.set(id, {
        resolve: (response) => {
          if (response.status >= 400) {
            const error = response.body && typeof response.body === "object" ? response.body : {};
            reject(new BuddycloudError(response.status, error.error ?? `http-${response.status}`, error.message ?? ""));
          } else {
            resolve({ status: response.status, headers: response.headers, body: response.body });
          }
        },
        reject,
      });
    });
  }

  /** Close for good: no reconnect. */
  close() {
    this._closed = true;
    for (const timer of this._timers) clearTimeout(timer);
    this._timers.clear();
    this._failRequests();
    const socket = this._socket;
    this._socket = null;
    if (socket) {
      try {
        socket.close(1000);
      } catch {
        // already closing
      }
    }
    this._setState("closed");
  }
}
