// Types of harness.mjs for the TypeScript tests.
import type { BrowserContext } from "playwright-core";
import type { Miniflare, MiniflareOptions } from "miniflare";

export const ROOT: string;
export const CHROMIUM: string;
export const CHROMIUM_ARGS: string[];
export const FIXTURES: string;

export function tempDir(prefix: string): Promise<string>;
export function packTarball(dir: string): Promise<string>;
export function installPacked(dir: string): Promise<string>;

export interface Served {
  url: string;
  requests: string[];
  close(): Promise<void>;
}
export function serve(opts: { mounts?: Record<string, string>; pages?: Record<string, string> }): Promise<Served>;
export function packagePageHtml(): string;
export function webWorkerPageHtml(): string;
export function servePackagePage(pkgDir: string): Promise<Served>;

export interface Chromium {
  context: BrowserContext;
  version: string;
  close(): Promise<void>;
}
export function launchChromium(): Promise<Chromium>;
export function runPage(
  context: BrowserContext,
  url: string,
  opts?: { timeout?: number },
): Promise<{ result: unknown; logs: string[]; errors: string[] }>;

export function bundleWorker(entry: string, outDir: string): Promise<string>;
export function startWorker(scriptPath: string, options?: Partial<MiniflareOptions>): Promise<{ mf: Miniflare; url: string }>;

export function findForbidden(code: string): string[];
export function importClosure(entry: string): Promise<string[]>;

export function startScript(
  script: string,
  args?: string[],
  opts?: { timeout?: number },
): Promise<{ url: string; close(): Promise<void>; output(): string }>;
