import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parseProfile, startSim, type RunningSim } from '../src/index.js';
import { IoTurnClock } from '../src/sim/io-turn-clock.js';

let sim: RunningSim | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('IoTurnClock', () => {
  it('gives every read in one turn the turn’s first reading, and reads afresh the next turn', async () => {
    let t = 100;
    const clock = new IoTurnClock(() => t++);
    expect(clock.read()).toBe(100);
    expect(clock.read()).toBe(100);
    expect(clock.read(500)).toBe(100);
    await nextTurn();
    expect(clock.read()).toBe(102);
    expect(clock.read(900)).toBe(102);
    await nextTurn();
    expect(clock.read(900)).toBe(900);
  });
});

describe('simulator request timings', () => {
  it('stamps requests read in one I/O turn with that turn’s start, apart from when each was parsed', async () => {
    // A clock that moves on every reading, so requests parsed one after another in a turn get
    // distinct arrivals while their I/O turn is shared.
    let t = 0;
    sim = await startSim({ profile: parseProfile({ base: 'fast' }), now: () => (t += 1) });
    const n = 12;
    const sockets: Socket[] = await Promise.all(
      Array.from(
        { length: n },
        () =>
          new Promise<Socket>((resolve, reject) => {
            const s = connect(sim!.port, '127.0.0.1', () => resolve(s));
            s.once('error', reject);
          }),
      ),
    );
    // The server must have accepted every connection before the requests go out.
    while (sim.stats().connections < n) await new Promise((r) => setTimeout(r, 5));
    const replies = sockets.map(
      (s) =>
        new Promise<string>((resolve) => {
          let text = '';
          s.setEncoding('latin1');
          s.on('data', (d: string) => {
            text += d;
            if (text.includes('"object":"chat.completion"')) resolve(text);
          });
        }),
    );
    const body = JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 });
    // Written in one synchronous run: the server (same process) can only read them afterwards,
    // all in the same turn of its loop.
    for (const s of sockets) {
      s.write(
        `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ` +
          `${body.length}\r\n\r\n${body}`,
      );
    }
    await Promise.all(replies);
    for (const s of sockets) s.destroy();

    const timings = sim.requestTimings();
    expect(timings).toHaveLength(n);
    const turns = new Set(timings.map((x) => x.ioTurnMs));
    expect(turns.size).toBe(1);
    const arrivals = timings.map((x) => x.arrivalMs).sort((a, b) => a - b);
    expect(new Set(arrivals).size).toBe(n);
    for (const x of timings) expect(x.ioTurnMs).toBeLessThanOrEqual(x.arrivalMs);
    expect(arrivals[n - 1]! - [...turns][0]!).toBeGreaterThanOrEqual(n - 1);
  });
});
