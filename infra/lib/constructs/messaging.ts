import { Duration, Validations } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { CLEANUP_DETAIL_TYPES, EVENT_SOURCE, REALTIME_DETAIL_TYPES, SIMILARITY_DETAIL_TYPES } from '../events';

/** Receives before a message moves to its dead-letter queue (as `brain2 provision` sets it locally). */
export const MAX_RECEIVES = 5;

/** How long failed messages and dead-lettered events are kept for inspection and redrive. */
const DEAD_LETTER_RETENTION = Duration.days(14);

export interface MessagingProps {
  readonly prefix: string;
  /** Visibility timeouts of the worker queues: six times the consuming function's timeout. */
  readonly cleanupVisibilityTimeout: Duration;
  readonly similarityVisibilityTimeout: Duration;
  readonly realtimeVisibilityTimeout: Duration;
}

/** A worker's queue, its dead-letter queue and the rule that feeds it from the bus. */
export interface WorkerChannel {
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
  readonly rule: events.Rule;
}

function encryptedQueue(scope: Construct, id: string, props: sqs.QueueProps): sqs.Queue {
  return new sqs.Queue(scope, id, {
    ...props,
    encryption: sqs.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
  });
}

/**
 * The event bus the service publishes to, the rules that route its events to the
 * workers' queues (cleanup, similarity, and realtime, whose worker posts changes to the
 * WebSocket clients; each with a dead-letter queue after five receives), the publisher's
 * own dead-letter queue for events EventBridge would not take (`BRAIN2_EVENTS_DLQ_URL`),
 * and the stream failures queue of the events function (`BRAIN2_STREAM_FAILURES_QUEUE_URL`):
 * stream records it cannot turn into an event, and what Lambda reports of the batches it
 * gave up on. Queues use SQS-managed encryption, which EventBridge can deliver to without a
 * key policy, and refuse requests that are not over TLS.
 */
export class Messaging extends Construct {
  readonly bus: events.EventBus;
  readonly cleanup: WorkerChannel;
  readonly similarity: WorkerChannel;
  readonly realtime: WorkerChannel;
  readonly publishDeadLetterQueue: sqs.Queue;
  readonly streamFailuresQueue: sqs.Queue;
  private readonly prefix: string;

  constructor(scope: Construct, id: string, props: MessagingProps) {
    super(scope, id);
    this.prefix = props.prefix;
    this.bus = new events.EventBus(this, 'Bus', { eventBusName: props.prefix });
    this.cleanup = this.channel('Cleanup', 'cleanup', CLEANUP_DETAIL_TYPES, props.cleanupVisibilityTimeout);
    this.similarity = this.channel('Similarity', 'similarity', SIMILARITY_DETAIL_TYPES, props.similarityVisibilityTimeout);
    this.realtime = this.channel('Realtime', 'realtime', REALTIME_DETAIL_TYPES, props.realtimeVisibilityTimeout);
    this.publishDeadLetterQueue = this.deadLetterQueue(
      'PublishDeadLetterQueue',
      'publish-dlq',
      'the service publisher, which sends to it directly',
    );
    this.streamFailuresQueue = this.deadLetterQueue(
      'StreamFailuresQueue',
      'stream-failures',
      'the events function and of its stream event source, which send to it directly',
    );
  }

  /** A queue that is a dead-letter queue itself, written by `writer` rather than by a redrive policy. */
  private deadLetterQueue(id: string, suffix: string, writer: string): sqs.Queue {
    const queue = encryptedQueue(this, id, {
      queueName: `${this.prefix}-${suffix}`,
      retentionPeriod: DEAD_LETTER_RETENTION,
    });
    Validations.of(queue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: `It is a dead-letter queue itself (of ${writer}, so no redrive policy names it)`,
    });
    return queue;
  }

  /** Every queue of the stack's messaging, dead-letter queues included. */
  get queues(): sqs.Queue[] {
    return [
      this.cleanup.queue,
      this.cleanup.deadLetterQueue,
      this.similarity.queue,
      this.similarity.deadLetterQueue,
      this.realtime.queue,
      this.realtime.deadLetterQueue,
      this.publishDeadLetterQueue,
      this.streamFailuresQueue,
    ];
  }

  private channel(id: string, name: string, detailTypes: readonly string[], visibilityTimeout: Duration): WorkerChannel {
    const deadLetterQueue = encryptedQueue(this, `${id}DeadLetterQueue`, {
      queueName: `${this.prefix}-${name}-dlq`,
      retentionPeriod: DEAD_LETTER_RETENTION,
    });
    const queue = encryptedQueue(this, `${id}Queue`, {
      queueName: `${this.prefix}-${name}`,
      visibilityTimeout,
      deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: MAX_RECEIVES },
    });
    const rule = new events.Rule(this, `${id}Rule`, {
      ruleName: `${this.prefix}-${name}`,
      description: `${detailTypes.join(', ')} events of ${EVENT_SOURCE} to the ${name} worker's queue`,
      eventBus: this.bus,
      eventPattern: { source: [EVENT_SOURCE], detailType: [...detailTypes] },
    });
    // Adds the queue policy that lets this rule (and only this rule) send to the queue.
    rule.addTarget(new targets.SqsQueue(queue));
    return { queue, deadLetterQueue, rule };
  }
}
