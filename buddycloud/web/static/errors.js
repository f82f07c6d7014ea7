// The server's error names (docs/errors.md, HTTP column) in words.
import { BuddycloudError } from "/sdk/index.js";

const WORDS = {
  "account-exists": "An account with that name exists already. Choose another name, or sign in.",
  "not-authenticated": "You are not signed in, or the user name or password is wrong.",
  "too-many-failures": "Too many failed sign-ins lately: wait, then try again.",
  "sign-in-unavailable": "Signing in is not possible right now: try again in a moment.",
  "not-authorized": "The user name or password is wrong.",
  "sign-in-required": "Sign in to do this.",
  "forbidden": "Your role in this channel does not allow this.",
  "closed-node": "This channel is closed: only its followers can read it. Ask to follow it.",
  "banned": "You are banned from this channel.",
  "pending-subscription": "Your request to follow this channel is waiting for approval.",
  "not-local-user": "Only users of this server can do this.",
  "can-not-modify-own-affiliation": "You cannot change your own role.",
  "can-not-modify-own-subscription": "You cannot change your own follow.",
  "node-must-have-owner": "A channel must keep its owner: the owner cannot leave or be demoted.",
  "not-subscribed": "You do not follow this channel.",
  "conflict": "That exists already: choose another name.",
  "node-not-found": "There is no such channel.",
  "item-not-found": "That post does not exist, or was deleted.",
  "not-found": "Nothing was found there.",
  "invalid-jid": "That is not a valid address (it looks like name@example.org).",
  "invalid-node": "That is not a valid channel node.",
  "invalid-value": "One of the values is not accepted.",
  "invalid-payload": "The post does not fit this channel.",
  "invalid-paging": "The page asked for is not valid.",
  "item-required": "The post is empty.",
  "payload-too-large": "The post is too long.",
  "body-too-large": "What you sent is too large.",
  "bad-request": "The server did not accept what was sent.",
  "malformed-json": "The server could not read what was sent.",
  "too-many-requests": "Too many attempts: wait a little and try again.",
  "rate-limited": "Too many attempts: wait a little and try again.",
  "unsupported": "The server does not support this.",
  "remote-server-not-found": "The server of that channel could not be found.",
  "remote-server-error": "The server of that channel answered with an error.",
  "remote-server-timeout": "The server of that channel did not answer in time.",
  "internal-server-error": "The server failed. Try again later.",
  "no-connection": "The server could not be reached. Check your connection; try again.",
};

/** `account-exists` -> "Account exists". */
export function nameInWords(name) {
  const words = String(name).replaceAll("-", " ").trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** What went wrong, for people: the error name in words, and the server's own message. */
export function describeError(error) {
  if (error instanceof BuddycloudError) {
    if (error.status === 0) return { title: "Offline", text: WORDS["no-connection"], name: "no-connection" };
    let text = WORDS[error.error] ?? `${nameInWords(error.error)}.`;
    if (error.retryAfter) text += ` You can try again in ${error.retryAfter} seconds.`;
    return {
      title: nameInWords(error.error),
      text,
      detail: error.message && error.message !== error.error ? error.message : null,
      name: error.error,
    };
  }
  return { title: "Error", text: String(error?.message ?? error), name: "error" };
}
