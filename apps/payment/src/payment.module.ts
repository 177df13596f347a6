import { DynamicModule, Module } from '@nestjs/common';
import { Config, ServiceModule } from '@orderflow/runtime';
import { AccountsController } from './accounts/accounts.controller';
import { AccountsService } from './accounts/accounts.service';
import { Accounts1763800000200 } from './migrations/1763800000200-accounts';
import { LedgerPerAttempt1763800000210 } from './migrations/1763800000210-ledger-per-attempt';

export const paymentMigrations = [Accounts1763800000200, LedgerPerAttempt1763800000210];

/** The payment app: customer balances and the ledger of charges and refunds. Owns the `payments` schema. */
@Module({})
export class PaymentModule {
  static register(config: Config): DynamicModule {
    return {
      module: PaymentModule,
      imports: [ServiceModule.forService({ service: 'payment', migrations: paymentMigrations }, config)],
      controllers: [AccountsController],
      providers: [AccountsService],
    };
  }
}
