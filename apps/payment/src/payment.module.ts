import { DynamicModule, Module } from '@nestjs/common';
import { Config, ServiceModule, ServiceDefinition } from '@orderflow/runtime';
import { AccountsController } from './accounts/accounts.controller';
import { AccountsService } from './accounts/accounts.service';
import { Accounts1763800000200 } from './migrations/1763800000200-accounts';
import { LedgerPerAttempt1763800000210 } from './migrations/1763800000210-ledger-per-attempt';

/** The payment service's database: its migrations, oldest first, and the tables its runtime role may only append to. */
export const paymentDatabase: ServiceDefinition = {
  service: 'payment',
  migrations: [Accounts1763800000200, LedgerPerAttempt1763800000210],
  appendOnly: ['ledger'],
};

/** The payment app: customer balances and the ledger of charges and refunds. Owns the `payments` schema. */
@Module({})
export class PaymentModule {
  static register(config: Config): DynamicModule {
    return {
      module: PaymentModule,
      imports: [ServiceModule.forService(paymentDatabase, config)],
      controllers: [AccountsController],
      providers: [AccountsService],
    };
  }
}
