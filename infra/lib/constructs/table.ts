import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { IndexSchema, TableSchema } from '../schema';

export interface Brain2TableProps {
  readonly schema: TableSchema;
}

const PROJECTIONS: Record<IndexSchema['projection'], dynamodb.ProjectionType> = {
  ALL: dynamodb.ProjectionType.ALL,
  KEYS_ONLY: dynamodb.ProjectionType.KEYS_ONLY,
  INCLUDE: dynamodb.ProjectionType.INCLUDE,
};

function stringKey(name: string): dynamodb.Attribute {
  return { name, type: dynamodb.AttributeType.STRING };
}

/**
 * The single table, built from `schema/table.json`: keys, every index and the TTL
 * attribute come from that file. On-demand, point-in-time recovery, a stream of new and
 * old images (for consumers to come), and protected from deletion: a `cdk destroy` leaves
 * it, with its data, in the account.
 */
export class Brain2Table extends Construct {
  readonly table: dynamodb.Table;
  readonly schema: TableSchema;

  constructor(scope: Construct, id: string, props: Brain2TableProps) {
    super(scope, id);
    this.schema = props.schema;
    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: stringKey(props.schema.partitionKey),
      sortKey: stringKey(props.schema.sortKey),
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      stream: dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
      timeToLiveAttribute: props.schema.ttlAttribute,
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    for (const index of Object.values(props.schema.indexes)) {
      this.table.addGlobalSecondaryIndex({
        indexName: index.name,
        partitionKey: stringKey(index.partitionKey),
        sortKey: stringKey(index.sortKey),
        projectionType: PROJECTIONS[index.projection],
        nonKeyAttributes: index.projection === 'INCLUDE' ? index.nonKeyAttributes : undefined,
      });
    }
  }

  /** ARN of one of the table's indexes, for policies that name each index they query. */
  indexArn(index: IndexSchema): string {
    return `${this.table.tableArn}/index/${index.name}`;
  }
}
