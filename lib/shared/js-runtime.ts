// Which JavaScript runtime runs this process: Node, Bun or Deno. Bun and Deno both
// report a `process.versions.node` (the Node version they imitate), so that alone does
// not tell Node; their own entries (`process.versions.bun`, `process.versions.deno`) do.

export type RuntimeName = 'node' | 'bun' | 'deno';

export interface Runtime {
  name: RuntimeName;
  /** Its own version ('1.4.5' for Bun 1.4.5), not the Node version it imitates. */
  version: string;
}

/** The runtime of a process whose process.versions is `versions`. */
export function runtimeOf(versions: NodeJS.ProcessVersions & { bun?: string; deno?: string }): Runtime {
  if (typeof versions.bun === 'string') return { name: 'bun', version: versions.bun };
  if (typeof versions.deno === 'string') return { name: 'deno', version: versions.deno };
  return { name: 'node', version: versions.node };
}

/** This process's runtime. */
export const runtime: Runtime = runtimeOf(process.versions);

/** 'Bun 1.4.5', 'Node 20.20.2', 'Deno 2.9.6'. */
export function runtimeLabel(r: Runtime = runtime): string {
  return `${r.name[0].toUpperCase()}${r.name.slice(1)} ${r.version}`;
}
