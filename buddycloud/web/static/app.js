// The Buddycloud web client (docs/web.md): plain ES modules over the JavaScript SDK.
// Pages are chosen by the URL's fragment (#/channel/<jid>), so that the server serves one
// page. Everything other users wrote goes into the page as text (dom.js), never as HTML.

import { Buddycloud, BuddycloudError, ratingOf, summarizeRatings } from "/sdk/index.js";
import { append, h, replace, uid } from "./dom.js";
import { describeError } from "./errors.js";

const SESSION_KEY = "buddycloud.session";
const ROLE_WORDS = {
  owner: "owner",
  moderator: "moderator",
  publisher: "follower+post",
  member: "follower",
  outcast: "banned",
  none: "not following",
  pending: "follow requested",
  invited: "invited",
};
const ACCESS_WORDS = {
  open: "Open: anyone can read and follow",
  authorize: "Authorize: followers need approval",
  whitelist: "Invitation only",
  local: "Local: users of this server only",
};
const FOLLOWING_ROLES = new Set(["owner", "moderator", "publisher", "member"]);

// --- state ----------------------------------------------------------------------------------

const app = {
  client: null,
  /** The signed-in user's JID, or null. */
  jid: null,
  /** channel -> the user's role there ("pending" while a follow awaits approval). */
  roles: new Map(),
  /** The current page's hooks for live events: {onPost(entry, channel), onFollowRequest(event)}. */
  view: null,
  /** Bumped on each page change: a page that finishes loading late is not shown. */
  generation: 0,
  live: null,
  connection: "online",
};

/**
 * fetch without the browser's credentials: the client signs every request itself, and a
 * 401 (which carries `WWW-Authenticate: Basic`) is then an answer to show, never the
 * browser's own password dialog (the Fetch standard prompts only when credentials are
 * included).
 */
const fetchOwnCredentials = (url, init) => fetch(url, { ...init, credentials: "omit" });

function newClient(options = {}) {
  return new Buddycloud({
    url: location.origin,
    fetch: fetchOwnCredentials,
    onSession(session) {
      // A token session may outlive a reload (this tab only); a password never leaves memory.
      if (session) sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
      else sessionStorage.removeItem(SESSION_KEY);
    },
    ...options,
  });
}

function restoreSession() {
  const stored = sessionStorage.getItem(SESSION_KEY);
  if (stored) {
    try {
      const session = JSON.parse(stored);
      if (typeof session?.token === "string" && typeof session?.jid === "string" && session.expiresAt > Date.now()) {
        app.client = newClient({ session });
        app.jid = session.jid;
        return;
      }
    } catch {
      // A damaged entry: start signed out.
    }
    sessionStorage.removeItem(SESSION_KEY);
  }
  app.client = newClient();
}

// --- announcements and connection state ------------------------------------------------------

function announce(text) {
  const region = document.getElementById("announcer");
  // Cleared first, so that the same words twice are announced twice.
  region.textContent = "";
  setTimeout(() => {
    region.textContent = text;
  }, 50);
}

function setConnection(state) {
  if (state === app.connection) return;
  const previous = app.connection;
  app.connection = state;
  const banner = document.getElementById("connection");
  document.body.classList.toggle("offline", state === "offline");
  if (state === "offline") {
    banner.hidden = false;
    banner.className = "connection offline";
    banner.textContent = "Offline: the connection to the server was lost. Reconnecting…";
  } else if (state === "online") {
    banner.className = "connection";
    banner.hidden = true;
    banner.textContent = "";
    if (previous === "offline") {
      announce("Back online.");
      // What arrived while offline came by the resume; a page read before is read again
      // only when the live source asks for it (resync).
    }
  }
}

// --- live events: the websocket with a token, else long-polling ------------------------------

function stopLive() {
  if (app.live) app.live.stop();
  app.live = null;
}

function startLive() {
  stopLive();
  if (!app.jid) return;
  app.live = app.client.method === "token" ? socketSource() : pollSource();
}

/** The websocket (docs/websocket.md): posts and follow requests, resumed after a drop. */
function socketSource() {
  const live = app.client.live();
  let fallback = null;
  live.on("post", (event) => deliverPost(event.entry, event.channel, event.node));
  live.on("follow-request", (event) => {
    announce(`${event.jid} asks to follow ${event.channel}.`);
    app.view?.onFollowRequest?.(event);
  });
  live.on("resync", () => route());
  live.on("state", (state) => {
    if (state === "online") setConnection("online");
    else if (state === "offline") setConnection("offline");
  });
  live.on("error", (error) => {
    if (error instanceof BuddycloudError && error.error === "token-required" && !fallback) {
      fallback = pollSource();
    }
  });
  return {
    stop() {
      live.close();
      fallback?.stop();
    },
    async reconnect() {
      // The browser is online again. A socket that was lost reconnects by itself (and says
      // so through "state"); one that lived through it is asked once to be sure.
      if (live.state !== "online") return;
      try {
        await live.request("GET", "/api");
        setConnection("online");
      } catch {
        // The SDK drops and reopens a socket that does not answer.
      }
    },
  };
}

/** GET /api/notifications/posts held open until a post comes (a Basic sign-in). */
function pollSource() {
  let stopped = false;
  let wake = null;
  const sleep = (ms) =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  (async () => {
    let since = null;
    let delay = 500;
    while (!stopped) {
      try {
        const answer = await app.client.request("GET", "/api/notifications/posts", {
          query: since === null ? {} : { since },
        });
        if (stopped) return;
        setConnection("online");
        delay = 500;
        for (const item of answer.body.items ?? []) {
          const [channel, node] = splitSource(item.source);
          deliverPost(item, channel, node);
        }
        since = String(answer.body.last);
      } catch (error) {
        if (stopped) return;
        if (error instanceof BuddycloudError && error.status === 401) {
          signedOut("Your sign-in is no longer valid: sign in again.");
          return;
        }
        if (error instanceof BuddycloudError && error.status === 0) setConnection("offline");
        await sleep(delay);
        delay = Math.min(delay * 2, 8000);
      }
    }
  })();
  return {
    stop() {
      stopped = true;
      wake?.();
    },
    reconnect() {
      wake?.();
    },
  };
}

function splitSource(source) {
  const at = String(source ?? "").indexOf("/");
  return at < 0 ? [source, "posts"] : [source.slice(0, at), source.slice(at + 1)];
}

function deliverPost(entry, channel, node) {
  if (node !== "posts" || !entry) return;
  app.view?.onPost?.(entry, channel);
}

addEventListener("offline", () => setConnection("offline"));
addEventListener("online", () => app.live?.reconnect());

// --- navigation -------------------------------------------------------------------------------

function renderNav() {
  const nav = document.getElementById("nav");
  const link = (href, text) => h("li", {}, h("a", { href }, text));
  if (app.jid) {
    replace(
      nav,
      link("#/", "Home"),
      link("#/explore", "Explore"),
      link(`#/channel/${encodeURIComponent(app.jid)}`, "My channel"),
      link("#/new-channel", "New channel"),
      h("li", {}, h("button", { type: "button", class: "link", onclick: signOut }, `Sign out ${app.jid}`)),
    );
  } else {
    replace(nav, link("#/", "Home"), link("#/explore", "Explore"), link("#/signin", "Sign in"), link("#/signup", "Sign up"));
  }
}

function parseHash(initial = false) {
  let hash = location.hash || "#/";
  if (!hash.startsWith("#/")) {
    if (!initial) return null; // an in-page link such as #main: the page stays
    hash = "#/";
  }
  const [path, query = ""] = hash.slice(1).split("?");
  const parts = path.split("/").filter(Boolean).map((part) => {
    try {
      return decodeURIComponent(part);
    } catch {
      return part;
    }
  });
  return { parts, params: new URLSearchParams(query) };
}

async function route(initial = false) {
  const where = parseHash(initial === true);
  if (!where) return;
  const { parts, params } = where;
  app.generation += 1;
  const generation = app.generation;
  app.view = null;
  const main = document.getElementById("main");
  const page = h("div", { class: "page" });
  let render;
  if (parts.length === 0) render = app.jid ? homePage : welcomePage;
  else if (parts[0] === "signin") render = signInPage;
  else if (parts[0] === "signup") render = signUpPage;
  else if (parts[0] === "explore") render = (into) => explorePage(into, params.get("q") ?? "");
  else if (parts[0] === "new-channel") render = newChannelPage;
  else if (parts[0] === "channel" && parts[1] && parts[2] === "manage") render = (into) => managePage(into, parts[1]);
  else if (parts[0] === "channel" && parts[1]) render = (into) => channelPage(into, parts[1]);
  else render = notFoundPage;
  try {
    await render(page);
  } catch (error) {
    if (generation !== app.generation) return;
    replace(page, h("h1", { tabindex: "-1" }, "Something went wrong"), errorBox(error));
  }
  if (generation !== app.generation) return;
  replace(main, page);
  const heading = main.querySelector("h1");
  document.title = heading ? `${heading.textContent} · Buddycloud` : "Buddycloud";
  heading?.setAttribute("tabindex", "-1");
  heading?.focus();
}

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

// --- forms --------------------------------------------------------------------------------------

/** A labelled field, its hint and the place for its error. */
function field({ label, name, type = "text", value = "", hint = null, options = null, rows = null, ...attributes }) {
  const id = uid(name);
  const hintId = hint ? `${id}-hint` : null;
  const errorId = `${id}-error`;
  let control;
  if (options) {
    control = h(
      "select",
      { id, name, "aria-describedby": [hintId, errorId].filter(Boolean).join(" "), ...attributes },
      options.map(([optionValue, text]) => h("option", { value: optionValue, selected: optionValue === value }, text)),
    );
  } else if (rows) {
    control = h("textarea", { id, name, rows, "aria-describedby": [hintId, errorId].filter(Boolean).join(" "), ...attributes });
    control.value = value;
  } else {
    control = h("input", { id, name, type, value, "aria-describedby": [hintId, errorId].filter(Boolean).join(" "), ...attributes });
  }
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    hint ? h("p", { class: "hint", id: hintId }, hint) : null,
    control,
    h("p", { class: "field-error", id: errorId, hidden: true }),
  );
}

/**
 * Check a form before sending: `rules` maps a field name to a function answering an error
 * text or null. Errors are shown beside their fields; the first bad field takes the focus.
 */
function validate(form, rules) {
  let first = null;
  for (const [name, rule] of Object.entries(rules)) {
    const control = form.elements.namedItem(name);
    const problem = rule(control.value, form);
    const error = document.getElementById(`${control.id}-error`);
    if (problem) {
      control.setAttribute("aria-invalid", "true");
      error.textContent = problem;
      error.hidden = false;
      first ??= control;
    } else {
      control.removeAttribute("aria-invalid");
      error.textContent = "";
      error.hidden = true;
    }
  }
  if (first) first.focus();
  return first === null;
}

function errorBox(error) {
  const { title, text, detail, name } = describeError(error);
  return h(
    "div",
    { class: "error-box", role: "alert", "data-error": name },
    h("p", {}, h("strong", {}, `${title}: `), text),
    detail ? h("p", { class: "detail" }, `The server said: ${detail}`) : null,
  );
}

/** A form whose submit runs `action` (after `rules` pass), showing a refusal in words. */
function form({ label, rules = {}, action, submit, className = "" }, ...fields) {
  const status = h("div", { class: "form-status" });
  const button = h("button", { type: "submit" }, submit);
  const element = h("form", { novalidate: true, "aria-label": label, class: className }, fields, status, button);
  element.addEventListener("submit", async (event) => {
    event.preventDefault();
    replace(status);
    if (!validate(element, rules)) return;
    button.disabled = true;
    try {
      await action(element, status);
    } catch (error) {
      replace(status, errorBox(error));
    } finally {
      button.disabled = false;
    }
  });
  return element;
}

const required = (what) => (value) => (value.trim() ? null : `Enter ${what}.`);
const USERNAME = /^[a-z0-9][a-z0-9._-]{0,63}$/i;
const CHANNEL_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

// --- posts ----------------------------------------------------------------------------------

function channelLink(jid) {
  return h("a", { href: `#/channel/${encodeURIComponent(jid)}` }, jid);
}

function when(iso) {
  const date = new Date(iso);
  const text = Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
  return h("time", { datetime: iso }, text);
}

/**
 * One post: author, time, the text as text. In a thread (`thread` given) it gets its
 * replies, its ratings and the forms to reply and rate.
 */
function postView(entry, { channel, showChannel = false, thread = null } = {}) {
  const headingId = uid("post");
  const article = h(
    "article",
    { class: entry.replyTo ? "post reply" : "post", "data-id": entry.id, "aria-labelledby": headingId, tabindex: "-1" },
    h(
      "header",
      {},
      h("span", { id: headingId, class: "author" }, entry.author),
      " · ",
      when(entry.published),
      showChannel ? [" in ", channelLink(channel)] : null,
      entry.replyTo && showChannel ? " (a reply)" : null,
    ),
    h("p", { class: "content" }, entry.content ?? "(a post of another kind)"),
  );
  if (!thread) return article;
  const ratings = h("p", { class: "ratings" });
  const replies = h("ol", { class: "replies", "aria-label": "Replies" });
  article.append(ratings, replies);
  const state = { ratings: [], article, channel };
  const showRatings = () => {
    const summary = summarizeRatings(state.ratings);
    replace(
      ratings,
      summary.count === 0
        ? "Not rated yet."
        : `Rated ${summary.average.toFixed(1)} of 5 by ${summary.count} ${summary.count === 1 ? "person" : "people"}.`,
    );
  };
  state.addReply = (reply) => {
    if (article.querySelector(`[data-id="${CSS.escape(reply.id)}"]`)) return;
    if (ratingOf(reply) !== null) {
      state.ratings = state.ratings.filter((one) => one.author !== reply.author).concat([reply]);
      showRatings();
      return;
    }
    replies.append(h("li", {}, postView(reply, { channel })));
  };
  for (const reply of [...thread].reverse()) state.addReply(reply);
  showRatings();
  if (app.jid) article.append(postActions(entry, channel, state));
  article.thread = state;
  return article;
}

function postActions(entry, channel, thread) {
  const replyForm = form(
    {
      label: `Reply to ${entry.author}`,
      submit: "Send reply",
      className: "reply-form",
      rules: { content: required("a reply") },
      async action(element) {
        const reply = await app.client.reply(channel, entry.id, element.elements.content.value.trim());
        element.reset();
        thread.addReply(reply);
        announce("Reply sent.");
      },
    },
    field({ label: "Your reply", name: "content", rows: 2, maxlength: 10000 }),
  );
  const rateForm = form(
    {
      label: `Rate the post of ${entry.author}`,
      submit: "Rate",
      className: "rate-form",
      rules: { stars: (value) => (/^[1-5]$/.test(value) ? null : "Choose from 1 to 5 stars.") },
      async action(element) {
        const stars = Number(element.elements.stars.value);
        const rating = await app.client.rate(channel, entry.id, stars);
        thread.addReply(rating);
        announce(`Rated ${stars} of 5.`);
      },
    },
    field({
      label: "Stars",
      name: "stars",
      value: "",
      options: [["", "Choose…"], ["1", "1 star"], ["2", "2 stars"], ["3", "3 stars"], ["4", "4 stars"], ["5", "5 stars"]],
    }),
  );
  return h("div", { class: "post-actions" }, replyForm, rateForm);
}

/**
 * A list of posts where live ones wait behind a "new posts" button instead of pushing the
 * page down; the button shows them and moves the focus to the first.
 */
function liveList({ label, render }) {
  const list = h("ol", { class: "posts", "aria-label": label });
  const waiting = [];
  const shown = new Set();
  const button = h("button", { type: "button", class: "new-posts", hidden: true });
  const relabel = () => {
    const count = waiting.length;
    button.textContent = count === 1 ? "Show 1 new post" : `Show ${count} new posts`;
    button.hidden = count === 0;
  };
  button.addEventListener("click", () => {
    const items = waiting.splice(0).reverse().map((entry) => h("li", {}, render(entry)));
    list.prepend(...items);
    relabel();
    items[0]?.querySelector("article")?.focus();
  });
  return {
    element: h("div", { class: "live-list" }, button, list),
    list,
    has: (id) => shown.has(id),
    /** Posts loaded with the page, newest first. */
    show(entries) {
      for (const entry of entries) {
        shown.add(entry.id);
        list.append(h("li", {}, render(entry)));
      }
    },
    /** One's own new post: at the top at once (its live event may have come first). */
    prepend(entry) {
      const at = waiting.findIndex((one) => one.id === entry.id);
      if (at >= 0) {
        waiting.splice(at, 1);
        relabel();
      } else if (shown.has(entry.id)) {
        return;
      }
      shown.add(entry.id);
      list.prepend(h("li", {}, render(entry)));
    },
    /** A post that arrived live: counted on the button, shown when asked. */
    arrive(entry, from) {
      if (shown.has(entry.id)) return;
      if (entry.author === app.jid) {
        this.prepend(entry);
        return;
      }
      shown.add(entry.id);
      waiting.push(entry);
      relabel();
      announce(waiting.length === 1 ? `1 new post from ${from}.` : `${waiting.length} new posts.`);
    },
  };
}

function composer({ channel, onPosted }) {
  return form(
    {
      label: `Post to ${channel}`,
      submit: "Post",
      className: "composer",
      rules: { content: (value) => (value.trim() ? (value.length > 10000 ? "A post has at most 10,000 characters." : null) : "Write something to post.") },
      async action(element) {
        const entry = await app.client.publish(channel, element.elements.content.value.trim());
        element.reset();
        onPosted(entry);
        announce("Posted.");
      },
    },
    field({ label: channel === app.jid ? "New post on your channel" : `New post in ${channel}`, name: "content", rows: 3 }),
  );
}

// --- pages ------------------------------------------------------------------------------------

function notFoundPage(page) {
  append(page, h("h1", {}, "Nothing here"), h("p", {}, h("a", { href: "#/" }, "Go to the home page.")));
}

function welcomePage(page) {
  append(
    page,
    h("h1", {}, "Buddycloud"),
    h("p", { class: "lead" }, "Channels to follow and talk in: personal channels, topic channels, live."),
    h(
      "ul",
      { class: "actions" },
      h("li", {}, h("a", { href: "#/explore", class: "button" }, "Explore public channels")),
      h("li", {}, h("a", { href: "#/signin", class: "button" }, "Sign in")),
      h("li", {}, h("a", { href: "#/signup", class: "button" }, "Create an account")),
    ),
  );
}

async function loadRoles() {
  app.roles.clear();
  if (!app.jid) return;
  const page = await app.client.subscriptions({ max: 1000 });
  for (const { channel, node, role } of page.items) if (node === "posts") app.roles.set(channel, role);
}

async function homePage(page) {
  await loadRoles();
  const channels = [...app.roles].filter(([, role]) => FOLLOWING_ROLES.has(role)).map(([channel]) => channel);
  if (!channels.includes(app.jid)) channels.unshift(app.jid);
  const pages = await Promise.all(
    channels.slice(0, 50).map((channel) =>
      app.client
        .posts(channel, { max: 20 })
        .then((result) => result.items.map((entry) => ({ ...entry, source: channel })))
        .catch(() => []),
    ),
  );
  const entries = pages
    .flat()
    .filter((entry) => ratingOf(entry) === null)
    .sort((a, b) => String(b.updated).localeCompare(String(a.updated)))
    .slice(0, 60);
  const timeline = liveList({
    label: "Timeline",
    render: (entry) => postView(entry, { channel: splitSource(entry.source)[0], showChannel: true }),
  });
  timeline.show(entries);
  append(
    page,
    h("h1", {}, "Home"),
    composer({ channel: app.jid, onPosted: (entry) => timeline.prepend({ ...entry, source: app.jid }) }),
    h(
      "section",
      { "aria-labelledby": "timeline-heading" },
      h("h2", { id: "timeline-heading" }, "Timeline"),
      entries.length === 0
        ? h("p", { class: "empty" }, "Nothing yet. ", h("a", { href: "#/explore" }, "Find channels to follow."))
        : null,
      timeline.element,
    ),
  );
  app.view = {
    onPost(entry, channel) {
      if (ratingOf(entry) !== null) return;
      timeline.arrive({ ...entry, source: channel }, entry.author);
    },
  };
}

function signInPage(page) {
  append(
    page,
    h("h1", {}, "Sign in"),
    form(
      {
        label: "Sign in",
        submit: "Sign in",
        rules: {
          username: (value) => (value.trim() ? null : "Enter your user name."),
          password: (value) => (value ? null : "Enter your password."),
        },
        async action(element) {
          const client = newClient();
          const jid = await client.signIn({
            username: element.elements.username.value.trim(),
            password: element.elements.password.value,
          });
          signedIn(client, jid);
        },
      },
      field({ label: "User name", name: "username", autocomplete: "username", hint: "Your name, or name@server" }),
      field({ label: "Password", name: "password", type: "password", autocomplete: "current-password" }),
    ),
    h("p", {}, "No account yet? ", h("a", { href: "#/signup" }, "Create one.")),
  );
}

function signUpPage(page) {
  append(
    page,
    h("h1", {}, "Create an account"),
    form(
      {
        label: "Create an account",
        submit: "Create account",
        rules: {
          username: (value) =>
            !value.trim()
              ? "Choose a user name."
              : USERNAME.test(value.trim())
                ? null
                : "A user name has letters, digits, dots, dashes or underscores (at most 64).",
          password: (value) =>
            value.length < 8 ? "A password has at least 8 characters." : value.length > 1024 ? "A password has at most 1,024 characters." : null,
          confirm: (value, element) => (value === element.elements.password.value ? null : "The two passwords differ."),
          email: (value) => (/^[^\s@]+@[^\s@]+$/.test(value.trim()) ? null : "Enter an email address, like name@example.org."),
        },
        async action(element) {
          const username = element.elements.username.value.trim();
          const password = element.elements.password.value;
          const client = newClient();
          await client.register({ username, password, email: element.elements.email.value.trim() });
          const jid = await client.signIn({ username, password });
          signedIn(client, jid);
        },
      },
      field({ label: "User name", name: "username", autocomplete: "username", hint: "Letters, digits, dots, dashes, underscores" }),
      field({ label: "Password", name: "password", type: "password", autocomplete: "new-password", hint: "At least 8 characters" }),
      field({ label: "Password again", name: "confirm", type: "password", autocomplete: "new-password" }),
      field({ label: "Email", name: "email", type: "email", autocomplete: "email" }),
    ),
  );
}

function signedIn(client, jid) {
  app.client = client;
  app.jid = jid;
  renderNav();
  startLive();
  announce(`Signed in as ${jid}.`);
  go("#/");
}

function signedOut(message) {
  stopLive();
  app.client = newClient();
  app.jid = null;
  app.roles.clear();
  sessionStorage.removeItem(SESSION_KEY);
  setConnection("online");
  renderNav();
  announce(message);
  go("#/");
}

async function signOut() {
  try {
    await app.client.signOut();
  } catch {
    // Signed out here whatever the server says.
  }
  signedOut("Signed out.");
}

async function explorePage(page, query) {
  const results = h("div", { class: "results" });
  const search = form(
    {
      label: "Search channels",
      submit: "Search",
      className: "search",
      rules: {
        q: (value) =>
          !value.trim() ? "Enter words to search for." : value.trim().split(/\s+/).length > 16 ? "At most 16 words." : null,
      },
      async action(element) {
        const q = element.elements.q.value.trim();
        history.replaceState(null, "", `#/explore?q=${encodeURIComponent(q)}`);
        await showResults(q);
      },
    },
    field({ label: "Words in a channel's title or description", name: "q", type: "search", value: query }),
  );
  async function showResults(q) {
    const found = await app.client.searchChannels(q, { max: 50 });
    replace(
      results,
      h("h2", {}, found.count === 1 ? "1 channel found" : `${found.count} channels found`),
      h(
        "ul",
        { class: "channels" },
        found.items.map((hit) =>
          h(
            "li",
            {},
            h("a", { href: `#/channel/${encodeURIComponent(hit.jid)}` }, hit.title || hit.jid),
            h("span", { class: "jid" }, ` ${hit.jid}`),
            hit.description ? h("p", {}, hit.description) : null,
          ),
        ),
      ),
    );
    announce(found.count === 1 ? "1 channel found." : `${found.count} channels found.`);
  }
  append(
    page,
    h("h1", {}, "Explore channels"),
    h("p", {}, "Find public channels by the words of their title or description; no account needed to read them."),
    search,
    results,
  );
  if (query.trim()) {
    try {
      await showResults(query.trim());
    } catch (error) {
      replace(results, errorBox(error));
    }
  }
}

function roleIn(channel) {
  if (channel === app.jid) return "owner";
  return app.roles.get(channel) ?? "none";
}

async function channelPage(page, channel) {
  const [metadata] = await Promise.all([app.client.metadata(channel), app.jid ? loadRoles() : null]);
  const role = roleIn(channel);
  const heading = h("h1", {}, metadata.title || channel);
  const threadsBox = h("section", { "aria-labelledby": "posts-heading" }, h("h2", { id: "posts-heading" }, "Posts"));
  const threads = new Map();
  const list = liveList({
    label: "Threads",
    render: (entry) => {
      const article = postView(entry, { channel, thread: entry.replies ?? [] });
      threads.set(entry.id, article.thread);
      return article;
    },
  });
  append(
    page,
    heading,
    h("p", { class: "jid" }, channel),
    metadata.description ? h("p", { class: "description" }, metadata.description) : null,
    h("p", { class: "facts" }, `${ACCESS_WORDS[metadata.access_model] ?? metadata.access_model}. `, app.jid ? `You are: ${ROLE_WORDS[role] ?? role}.` : ""),
    app.jid ? followControls(channel, role) : h("p", {}, h("a", { href: "#/signin" }, "Sign in"), " to follow this channel and take part."),
    role === "owner" || role === "moderator"
      ? h("p", {}, h("a", { href: `#/channel/${encodeURIComponent(channel)}/manage`, class: "button" }, "Manage followers and settings"))
      : null,
    app.jid && ["owner", "moderator", "publisher"].includes(role)
      ? composer({ channel, onPosted: (entry) => list.prepend({ ...entry, replies: [] }) })
      : null,
    threadsBox,
  );
  try {
    const page = await app.client.threads(channel, { max: 30 });
    const parents = page.items
      .map((thread) => {
        const parent = thread.items.find((item) => item.id === thread.id && !item.replyTo);
        return parent ? { ...parent, replies: thread.items.filter((item) => item !== parent) } : null;
      })
      .filter(Boolean);
    if (parents.length === 0) threadsBox.append(h("p", { class: "empty" }, "No posts yet."));
    list.show(parents);
  } catch (error) {
    threadsBox.append(errorBox(error));
  }
  threadsBox.append(list.element);
  app.view = {
    onPost(entry, from) {
      if (from !== channel) return;
      if (entry.replyTo) {
        const thread = threads.get(entry.replyTo);
        if (thread) {
          thread.addReply(entry);
          if (ratingOf(entry) === null) announce(`New reply from ${entry.author}.`);
        }
        return;
      }
      list.arrive({ ...entry, replies: [] }, entry.author);
    },
  };
}

function followControls(channel, role) {
  const status = h("div", { class: "form-status" });
  if (role === "owner") return null;
  const following = FOLLOWING_ROLES.has(role) || role === "pending";
  const text = role === "pending" ? "Cancel follow request" : following ? "Unfollow" : "Follow";
  const button = h("button", { type: "button" }, text);
  button.addEventListener("click", async () => {
    button.disabled = true;
    replace(status);
    try {
      if (following) {
        await app.client.unfollow(channel);
        announce(`You no longer follow ${channel}.`);
      } else {
        const now = await app.client.follow(channel);
        announce(now === "pending" ? `Follow request sent to ${channel}.` : `You follow ${channel}.`);
      }
      route();
    } catch (error) {
      replace(status, errorBox(error));
      button.disabled = false;
    }
  });
  return h("div", { class: "follow" }, button, status);
}

async function managePage(page, channel) {
  const [metadata] = await Promise.all([app.client.metadata(channel), loadRoles()]);
  const role = roleIn(channel);
  append(page, h("h1", {}, `Manage ${metadata.title || channel}`), h("p", {}, channelLink(channel)));
  if (role !== "owner" && role !== "moderator") {
    page.append(h("p", {}, "Only the owner and moderators of a channel manage it."));
    return;
  }
  const requests = h("section", { "aria-labelledby": "requests-heading" }, h("h2", { id: "requests-heading" }, "Follow requests"));
  const followers = h("section", { "aria-labelledby": "followers-heading" }, h("h2", { id: "followers-heading" }, "Followers and roles"));
  append(page, requests, followers, settingsSection(channel, metadata, role));
  await Promise.all([showRequests(requests, channel), showFollowers(followers, channel)]);
  app.view = {
    onFollowRequest(event) {
      if (event.channel === channel) showRequests(requests, channel);
    },
  };
}

/** A fresh number for a section's reload: only the latest of overlapping reloads shows. */
function reloading(section) {
  section.reloads = (section.reloads ?? 0) + 1;
  const mine = section.reloads;
  return () => section.reloads === mine;
}

async function showRequests(section, channel) {
  const latest = reloading(section);
  const follows = await app.client.followRequests(channel, { max: 1000 });
  if (!latest()) return;
  const pending = follows.items.filter((follow) => follow.subscription === "pending");
  const body = h("div", { class: "section-body" });
  const status = h("div", { class: "form-status" });
  if (pending.length === 0) body.append(h("p", { class: "empty" }, "No one is waiting."));
  const list = h("ul", { class: "people" });
  for (const { jid } of pending) {
    const act = (label, call, done) =>
      h("button", {
        type: "button",
        "aria-label": `${label} ${jid}`,
        async onclick(event) {
          event.currentTarget.disabled = true;
          try {
            await call(channel, jid);
            announce(done);
            await showRequests(section, channel);
            const followersSection = section.parentElement?.querySelector('[aria-labelledby="followers-heading"]');
            if (followersSection) await showFollowers(followersSection, channel);
          } catch (error) {
            replace(status, errorBox(error));
          }
        },
      }, label);
    list.append(
      h("li", {}, h("span", { class: "who" }, jid), " ", act("Approve", (c, j) => app.client.approve(c, j), `${jid} now follows.`), " ", act("Refuse", (c, j) => app.client.refuse(c, j), `Refused ${jid}.`)),
    );
  }
  body.append(list, status);
  section.querySelector(".section-body")?.remove();
  section.append(body);
}

const ROLE_CHOICES = [
  ["member", "Follower"],
  ["publisher", "Follower+post"],
  ["moderator", "Moderator"],
  ["outcast", "Banned"],
];

async function showFollowers(section, channel) {
  const latest = reloading(section);
  const page = await app.client.followers(channel, { max: 1000 });
  if (!latest()) return;
  // Unchanged: the table stays as it is, with whatever the user was choosing in it.
  const shown = JSON.stringify(page.items);
  if (section.shown === shown) return;
  section.shown = shown;
  const body = h("div", { class: "section-body" });
  const table = h(
    "table",
    {},
    h("caption", { class: "visually-hidden" }, `Followers of ${channel}`),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Who"), h("th", { scope: "col" }, "Role"), h("th", { scope: "col" }, "Change"))),
  );
  const rows = h("tbody");
  for (const { jid, role } of page.items) {
    const editable = jid !== app.jid && role !== "owner";
    const cell = h("td");
    if (editable) {
      const status = h("div", { class: "form-status" });
      const roleForm = form(
        {
          label: `Change the role of ${jid}`,
          submit: "Save role",
          className: "role-form",
          rules: { role: (value) => (ROLE_CHOICES.some(([choice]) => choice === value) ? null : "Choose a role.") },
          async action(element) {
            const now = await app.client.setRole(channel, jid, element.elements.role.value);
            announce(`${jid} is now ${ROLE_WORDS[now] ?? now}.`);
            await showFollowers(section, channel);
          },
        },
        field({ label: `Role of ${jid}`, name: "role", value: role, options: ROLE_CHOICES }),
      );
      const ban = h("button", {
        type: "button",
        class: "danger",
        "aria-label": `Ban ${jid}`,
        async onclick() {
          try {
            await app.client.ban(channel, jid);
            announce(`${jid} is banned.`);
            await showFollowers(section, channel);
          } catch (error) {
            replace(status, errorBox(error));
          }
        },
      }, "Ban");
      append(cell, roleForm, role === "outcast" ? null : ban, status);
    }
    rows.append(h("tr", { "data-jid": jid }, h("th", { scope: "row" }, jid), h("td", { class: "role" }, ROLE_WORDS[role] ?? role), cell));
  }
  table.append(rows);
  body.append(page.items.length ? h("div", { class: "table-scroll" }, table) : h("p", { class: "empty" }, "No followers yet."));
  section.querySelector(".section-body")?.remove();
  section.append(body);
}

function settingsSection(channel, metadata, role) {
  const ownerOnly = role !== "owner";
  return h(
    "section",
    { "aria-labelledby": "settings-heading" },
    h("h2", { id: "settings-heading" }, "Settings"),
    ownerOnly ? h("p", {}, "Moderators change the title and description; the owner the rest.") : null,
    form(
      {
        label: "Channel settings",
        submit: "Save settings",
        rules: {
          title: (value) => (value.length > 200 ? "A title has at most 200 characters." : null),
          description: (value) => (value.length > 2000 ? "A description has at most 2,000 characters." : null),
        },
        async action(element, status) {
          const changes = {
            title: element.elements.title.value.trim(),
            description: element.elements.description.value.trim(),
          };
          if (!ownerOnly) {
            changes.access_model = element.elements.access_model.value;
            changes.default_affiliation = element.elements.default_affiliation.value;
          }
          await app.client.updateMetadata(channel, changes);
          replace(status, h("p", { class: "ok", role: "status" }, "Settings saved."));
        },
      },
      field({ label: "Title", name: "title", value: metadata.title ?? "" }),
      field({ label: "Description", name: "description", value: metadata.description ?? "", rows: 3 }),
      field({
        label: "Who may follow",
        name: "access_model",
        value: metadata.access_model,
        options: Object.entries(ACCESS_WORDS),
        disabled: ownerOnly,
      }),
      field({
        label: "Role of new followers",
        name: "default_affiliation",
        value: metadata.default_affiliation,
        options: [
          ["member", "Follower: reads"],
          ["publisher", "Follower+post: reads and posts"],
        ],
        disabled: ownerOnly,
      }),
    ),
  );
}

function newChannelPage(page) {
  if (!app.jid) {
    append(page, h("h1", {}, "New topic channel"), h("p", {}, h("a", { href: "#/signin" }, "Sign in"), " to create a channel."));
    return;
  }
  const domain = app.jid.split("@")[1];
  append(
    page,
    h("h1", {}, "New topic channel"),
    form(
      {
        label: "New topic channel",
        submit: "Create channel",
        rules: {
          name: (value) =>
            !value.trim() ? "Choose a name." : CHANNEL_NAME.test(value.trim()) ? null : "A name has lower-case letters, digits, dots, dashes or underscores.",
          title: (value) => (value.length > 200 ? "A title has at most 200 characters." : null),
        },
        async action(element) {
          const jid = `${element.elements.name.value.trim()}@topics.${domain}`;
          await app.client.createChannel(jid, {
            title: element.elements.title.value.trim() || undefined,
            description: element.elements.description.value.trim() || undefined,
            access_model: element.elements.access_model.value,
          });
          announce(`Channel ${jid} created.`);
          go(`#/channel/${encodeURIComponent(jid)}`);
        },
      },
      field({ label: "Name", name: "name", hint: `The channel's address will be name@topics.${domain}` }),
      field({ label: "Title", name: "title" }),
      field({ label: "Description", name: "description", rows: 3 }),
      field({ label: "Who may follow", name: "access_model", value: "open", options: Object.entries(ACCESS_WORDS) }),
    ),
  );
}

// --- start ------------------------------------------------------------------------------------

document.querySelector(".skip")?.addEventListener("click", (event) => {
  event.preventDefault();
  (document.querySelector("#main h1") ?? document.getElementById("main")).focus();
});
addEventListener("hashchange", () => route());
restoreSession();
renderNav();
startLive();
route(true);
