// Starts a real `buddycloud serve` for the tests: SQLite in a temporary folder, the HTTP API
// on a free port of 127.0.0.1. BUDDYCLOUD_BIN names the executable (default: the project's
// .venv/bin/buddycloud).
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const BUDDYCLOUD_BIN = process.env.BUDDYCLOUD_BIN ?? resolve(here, "../../../.venv/bin/buddycloud");

/**
 * @param {Record<string, string>} [settings] more BUDDYCLOUD_<SECTION>_<KEY> variables
 * @returns {Promise<{url: string, domain: string, log: () => string, stop: () => Promise<void>}>}
 */
export async function startServer(settings = {}) {
  const folder = mkdtempSync(join(tmpdir(), "buddycloud-sdk-js-"));
  const env = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith("BUDDYCLOUD_")) env[name] = value;
  }
  Object.assign(env, {
    BUDDYCLOUD_SERVER_DOMAIN: "localhost",
    BUDDYCLOUD_STORAGE_URL: `sqlite:///${join(folder, "buddycloud.db")}`,
    BUDDYCLOUD_HTTP_LISTEN: "127.0.0.1:0",
    ...settings,
  });
  const child = spawn(BUDDYCLOUD_BIN, ["serve"], { cwd: folder, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const exited = new Promise((done) => child.once("exit", (code, signal) => done({ code, signal })));
  const url = await new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`buddycloud serve did not start in 30 s:\n${output}`)), 30000);
    const read = (chunk) => {
      output += chunk;
      const match = /HTTP API listening on (http:\/\/\S+?)\/api/.exec(output);
      if (match) {
        clearTimeout(timer);
        done(match[1]);
      }
    };
    child.stdout.setEncoding("utf8").on("data", read);
    child.stderr.setEncoding("utf8").on("data", read);
    child.once("error", (error) => {
      clearTimeout(timer);
      fail(new Error(`cannot run ${BUDDYCLOUD_BIN}: ${error.message} (set BUDDYCLOUD_BIN)`));
    });
    exited.then(({ code }) => {
      clearTimeout(timer);
      fail(new Error(`buddycloud serve exited with ${code} before listening:\n${output}`));
    });
  });
  return {
    url,
    domain: "localhost",
    log: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 10000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(folder, { recursive: true, force: true });
    },
  };
}

/** Waits until `condition()` is true, checking every 20 ms, for at most `timeout` ms. */
export async function waitFor(condition, timeout = 10000, what = "the condition") {
  const end = Date.now() + timeout;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 20));
  }
}

let counter = 0;
/** A fresh user name for each test: tests never depend on each other's accounts. */
export function uniqueName(prefix = "user") {
  counter += 1;
  return `${prefix}${process.pid}x${counter}`;
}
