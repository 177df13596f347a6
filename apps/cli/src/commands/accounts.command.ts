import { Command } from 'commander';
import { AccountBalance, formatMoney, Subjects } from '@orderflow/contracts';
import { CliFailure } from '../cli.errors';
import { currencyCode, wholeNumber, withClient } from '../context';
import { print } from '../output';

const show = (json: boolean, a: AccountBalance) =>
  print(json, a, ['customer', 'balance (minor units)', 'balance'], [[a.customerId, a.balance, formatMoney(a.balance, a.currency)]]);

export function accountsCommand(): Command {
  const accounts = new Command('accounts').description('customer accounts (owned by the payment service)');
  accounts
    .command('deposit')
    .description('add funds, in minor units (sends payment.cmd.deposit and waits for the new balance)')
    .argument('<customer>', 'customer id')
    .argument('<amount>', 'minor units, e.g. 2500 = 25.00', wholeNumber('AMOUNT', 1))
    .option('--currency <code>', 'ISO 4217 currency of a new account', currencyCode, 'USD')
    .option('--json', 'print JSON')
    .action(async (customerId: string, amount: number, opts: { currency: string; json?: boolean }, cmd: Command) => {
      const deposited = await withClient(cmd, (c) =>
        c.command<AccountBalance>(Subjects.PaymentDeposit, { customerId, amount, currency: opts.currency }, Subjects.PaymentDeposited, {
          check: `orderflow accounts show ${customerId}`,
        }),
      );
      show(!!opts.json, deposited.body);
    });
  accounts
    .command('show')
    .description('balance of a customer')
    .argument('<customer>', 'customer id')
    .option('--json', 'print JSON')
    .action(async (customerId: string, opts: { json?: boolean }, cmd: Command) => {
      const balance = await withClient(cmd, (c) => c.query<AccountBalance>(Subjects.QueryAccount, { customerId }));
      if (!balance) throw new CliFailure(`unknown customer ${customerId}`);
      show(!!opts.json, balance);
    });
  return accounts;
}
