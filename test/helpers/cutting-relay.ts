/** A TCP relay to a test server that breaks a reused connection just after its RSET probe flight. */
import { connect, createServer, type Server } from 'node:net';

/**
 * Relays every connection to 127.0.0.1:`port`, but cuts the first one 30 ms after the client
 * sent RSET (a reused connection's probe), holding back every reply from then on: by then the
 * whole flight has reached the server and been answered, and the client sees none of it.
 */
export async function rsetCuttingRelay(port: number): Promise<{ destination: string; close: () => void }> {
  let n = 0;
  const relay: Server = createServer((client) => {
    const first = n++ === 0;
    const up = connect(port, '127.0.0.1');
    let cut = false;
    client.on('data', (d) => {
      up.write(d);
      if (first && !cut && d.toString('latin1').startsWith('RSET')) {
        cut = true;
        setTimeout(() => (client.destroy(), up.destroy()), 30);
      }
    });
    up.on('data', (d) => void (cut || client.write(d)));
    client.on('error', () => {});
    up.on('error', () => {});
    client.on('close', () => up.destroy());
    up.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  return { destination: `[127.0.0.1]:${(relay.address() as { port: number }).port}`, close: () => relay.close() };
}
