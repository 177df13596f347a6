import { randomUUID } from 'node:crypto';
import { Subjects } from '@orderflow/contracts';
import { Pipeline, Seed } from './lab';

export interface OrderBody {
  orderId: string;
  customerId: string;
  currency: string;
  items: { sku: string; quantity: number; unitPrice: number }[];
}

/** A valid order: one to three lines of the seeded SKUs, every tenth from the customer who cannot pay. */
export function randomOrder(i: number): OrderBody {
  const lines = 1 + (i % 3);
  return {
    orderId: randomUUID(),
    customerId: i % 10 === 9 ? Seed.broke : Seed.customers[i % Seed.customers.length],
    currency: 'USD',
    items: Seed.skus.slice(0, lines).map((sku, j) => ({ sku, quantity: 1 + ((i + j) % 3), unitPrice: 100 + ((i * 37 + j) % 4900) })),
  };
}

/**
 * Drives `order.created` at a fixed rate with a plain NATS client, as any producer would. An order counts as
 * **accepted** once the stream acknowledged one of its publishes; a publish that failed (the server down) is
 * counted and not retried, like a producer that gives up.
 */
export class Load {
  /** Accepted order id → when the stream acknowledged it (ms since the epoch). */
  readonly accepted = new Map<string, number>();
  failedPublishes = 0;
  published = 0;
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly pipeline: Pipeline) {}

  /**
   * Publishes `ratePerSec` orders a second for `durationMs`; `copies(i)` publishes order i that many times, each
   * with a new message id (a producer's retries), a little apart. Resolves when every publish has settled.
   */
  async run(ratePerSec: number, durationMs: number, copies: (i: number) => number = () => 1): Promise<void> {
    const started = Date.now();
    const total = Math.round((ratePerSec * durationMs) / 1000);
    for (let i = 0; i < total; i++) {
      const wait = started + (i * 1000) / ratePerSec - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const order = randomOrder(i);
      for (let c = 0; c < copies(i); c++) this.track(this.send(order, c * 37));
    }
    await this.settled();
  }

  /** Publishes every order at once (a burst) and waits for the acks. */
  async burst(orders: OrderBody[]): Promise<void> {
    for (const o of orders) this.track(this.send(o, 0));
    await this.settled();
  }

  private async send(order: OrderBody, delayMs: number): Promise<void> {
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
    this.published++;
    try {
      await this.pipeline.publish(Subjects.OrderCreated, order);
      if (!this.accepted.has(order.orderId)) this.accepted.set(order.orderId, Date.now());
    } catch {
      this.failedPublishes++;
    }
  }

  private track(p: Promise<void>) {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  async settled(): Promise<void> {
    while (this.pending.size) await Promise.allSettled([...this.pending]);
  }
}
