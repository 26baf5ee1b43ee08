import * as net from 'node:net';

/** Let the OS pick a free port (for port 0 with strategies whose workers bind themselves). */
export function pickPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen({ host: host || undefined, port: 0, exclusive: true }, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}
