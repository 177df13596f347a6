import { DynamicModule, Module } from '@nestjs/common';
import { Config, ServiceModule } from '@orderflow/runtime';
import { paymentManifest } from './manifest';
import { AccountsController } from './accounts/accounts.controller';
import { AccountsRepository } from './accounts/accounts.repository';
import { AccountsService } from './accounts/accounts.service';

/** The payment app: customer balances and the ledger of charges and refunds. Owns the `payments` schema. */
@Module({})
export class PaymentModule {
  static register(config: Config): DynamicModule {
    return {
      module: PaymentModule,
      imports: [ServiceModule.forService(paymentManifest, config)],
      controllers: [AccountsController],
      providers: [AccountsService, AccountsRepository],
    };
  }
}
