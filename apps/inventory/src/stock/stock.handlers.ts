import { Inject, Injectable, OnApplicationBootstrap } from '@nestjs/common';
import { DataSource } from 'typeorm';
import {
  CommitStock,
  Consumers,
  ReleaseStock,
  ReservationsQuery,
  ReserveStock,
  RestockSku,
  StockQuery,
  Subjects,
} from '@orderflow/contracts';
import { causedBy, ConsumerRunner, InboundMessage, NotFoundError, QueryResponder } from '@orderflow/messaging';
import { Transactor } from '@orderflow/persistence';
import { Logger, LOGGER } from '@orderflow/runtime';
import { StockService } from './stock.service';

const consumer = Consumers.inventoryCommands;

/**
 * Inventory's side of the saga: `inventory.cmd.*` in, `inventory.evt.*` out (through the outbox). A reply
 * names the attempt it answers (`Saga-Id`) from the command's body, which is what the effect was keyed on.
 */
@Injectable()
export class StockHandlers implements OnApplicationBootstrap {
  constructor(
    private readonly stock: StockService,
    private readonly tx: Transactor,
    private readonly runner: ConsumerRunner,
    private readonly queries: QueryResponder,
    private readonly ds: DataSource,
    @Inject(LOGGER) private readonly log: Logger,
  ) {}

  async onApplicationBootstrap() {
    await this.runner.start(
      consumer,
      this.tx.handler(consumer, {
        [Subjects.InventoryReserve]: async (tx, msg: InboundMessage<ReserveStock>) => {
          const outcome = await this.stock.reserve(tx, msg.body);
          const { orderId } = msg.body;
          if (outcome.reserved) {
            tx.send({ subject: Subjects.InventoryReserved, body: { orderId }, ...causedBy(msg, { sagaId: msg.body.sagaId }) });
          } else {
            this.log.info({ orderId, sagaId: msg.sagaId, reason: outcome.reason, detail: outcome.detail }, 'reservation rejected');
            tx.send({
              subject: Subjects.InventoryRejected,
              body: { orderId, reason: outcome.reason, detail: outcome.detail },
              ...causedBy(msg, { sagaId: msg.body.sagaId }),
            });
          }
        },
        [Subjects.InventoryRelease]: async (tx, msg: InboundMessage<ReleaseStock>) => {
          await this.stock.release(tx, msg.body);
          tx.send({
            subject: Subjects.InventoryReleased,
            body: { orderId: msg.body.orderId },
            ...causedBy(msg, { sagaId: msg.body.sagaId }),
          });
        },
        [Subjects.InventoryCommit]: async (tx, msg: InboundMessage<CommitStock>) => {
          await this.stock.commit(tx, msg.body);
          tx.send({
            subject: Subjects.InventoryCommitted,
            body: { orderId: msg.body.orderId },
            ...causedBy(msg, { sagaId: msg.body.sagaId }),
          });
        },
        [Subjects.InventoryRestock]: async (tx, msg: InboundMessage<RestockSku>) => {
          const level = await this.stock.restock(tx, msg.body);
          tx.send({ subject: Subjects.InventoryRestocked, body: level, ...causedBy(msg) });
        },
      }),
    );
    this.queries.serve(Subjects.QueryStock, StockQuery, async (q) => {
      const level = await this.stock.level(this.ds, q.sku);
      if (!level) throw new NotFoundError(`unknown SKU ${q.sku}`);
      return level;
    });
    this.queries.serve(Subjects.QueryReservations, ReservationsQuery, (q) => this.stock.reservations(this.ds, q.orderId));
  }
}
