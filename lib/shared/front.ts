import type * as http from 'node:http';

/** Answers a request itself (ECV) and returns true, or returns false to let the app answer. */
export type FrontHandler = ((req: http.IncomingMessage, res: http.ServerResponse) => boolean) & {
  /** Would it answer a request for this path (and query)? */
  owns(url: string): boolean;
};

/** Is this response an HTTP/2 one (compatibility API)? It must not carry connection-specific headers. */
export function isHttp2Response(res: http.ServerResponse): boolean {
  return (res as { stream?: unknown }).stream !== undefined;
}
