import { DynamicModule, Module } from '@nestjs/common';
import { PostgresSagaStore } from './postgres-saga.store';
import type { SagaDefinition } from './saga.definition';
import { SagaDeadlines } from './saga-deadlines';
import { SagaStore } from './saga.store';
import { SAGA_DEFINITIONS, Sagas } from './sagas';

/**
 * The saga layer of an app that orchestrates sagas: `Sagas` (one orchestrator per definition), the `SagaStore`
 * (Postgres, the app's `saga_instances` table, which its migrations create) and the deadline sweep. Needs the
 * `ServiceModule`'s global providers (config, logger, metrics, database).
 * Source: Nest dynamic modules (https://docs.nestjs.com/fundamentals/dynamic-modules).
 */
@Module({})
export class SagaModule {
  /** @param definitions every saga type the app runs (names must differ). */
  static forRoot(definitions: SagaDefinition<any, any>[]): DynamicModule {
    return {
      module: SagaModule,
      providers: [
        { provide: SAGA_DEFINITIONS, useValue: definitions },
        { provide: SagaStore, useClass: PostgresSagaStore },
        Sagas,
        SagaDeadlines,
      ],
      exports: [Sagas, SagaStore],
    };
  }
}
