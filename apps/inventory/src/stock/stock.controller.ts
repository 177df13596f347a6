import { Inject } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { DataSource } from 'typeorm';
import {
  CommitStock,
  Consumers,
  ReleaseStock,
  ReservationsQuery,
  ReserveStock,
  RestockSku,
  StockLevel,
  StockQuery,
  Subjects,
} from '@orderflow/contracts';
import { NotFoundError } from '@orderflow/messaging';
import { readSql, Sql } from '@orderflow/persistence';
import { Logger, LOGGER } from '@orderflow/runtime';
import { JetStreamContext, MessageController, Reply, reply } from '@orderflow/transport';
import { StockService } from './stock.service';

const commands = { consumer: Consumers.inventoryCommands };

/**
 * Inventory's side of the saga: `inventory.cmd.*` in, `inventory.evt.*` out (returned, written to the outbox by the
 * transport). A reply names the attempt it answers (`Saga-Id`) from the command's body, which is what the effect
 * was keyed on. Queries are endpoints of the inventory service.
 */
@MessageController()
export class StockController {
  private readonly read: Sql;

  constructor(
    private readonly stock: StockService,
    ds: DataSource,
    @Inject(LOGGER) private readonly log: Logger,
  ) {
    this.read = readSql(ds);
  }

  @EventPattern(Subjects.InventoryReserve, commands)
  async reserve(@Payload() cmd: ReserveStock, @Ctx() ctx: JetStreamContext): Promise<Reply> {
    const outcome = await this.stock.reserve(ctx.tx, cmd);
    const attempt = { sagaId: cmd.sagaId };
    if (outcome.reserved) return reply(Subjects.InventoryReserved, { orderId: cmd.orderId, items: outcome.items }, attempt);
    this.log.info({ orderId: cmd.orderId, sagaId: cmd.sagaId, reason: outcome.reason, detail: outcome.detail }, 'reservation rejected');
    return reply(Subjects.InventoryRejected, { orderId: cmd.orderId, reason: outcome.reason, detail: outcome.detail }, attempt);
  }

  @EventPattern(Subjects.InventoryRelease, commands)
  async release(@Payload() cmd: ReleaseStock, @Ctx() ctx: JetStreamContext): Promise<Reply> {
    await this.stock.release(ctx.tx, cmd);
    return reply(Subjects.InventoryReleased, { orderId: cmd.orderId }, { sagaId: cmd.sagaId });
  }

  @EventPattern(Subjects.InventoryCommit, commands)
  async commit(@Payload() cmd: CommitStock, @Ctx() ctx: JetStreamContext): Promise<Reply> {
    await this.stock.commit(ctx.tx, cmd);
    return reply(Subjects.InventoryCommitted, { orderId: cmd.orderId }, { sagaId: cmd.sagaId });
  }

  @EventPattern(Subjects.InventoryRestock, commands)
  async restock(@Payload() cmd: RestockSku, @Ctx() ctx: JetStreamContext): Promise<Reply> {
    return reply(Subjects.InventoryRestocked, await this.stock.restock(ctx.tx, cmd));
  }

  /** @throws NotFoundError for an unknown SKU. */
  @MessagePattern(Subjects.QueryStock)
  async level(@Payload() q: StockQuery): Promise<StockLevel> {
    const level = await this.stock.level(this.read, q.sku);
    if (!level) throw new NotFoundError(`unknown SKU ${q.sku}`);
    return level;
  }

  @MessagePattern(Subjects.QueryReservations)
  reservations(@Payload() q: ReservationsQuery) {
    return this.stock.reservations(this.read, q.orderId);
  }
}
