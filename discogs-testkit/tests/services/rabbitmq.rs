use discogs_testkit::{require, Scope, Service};
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};

use crate::{within, TestResult};

#[tokio::test]
async fn rabbitmq_publish_with_confirm_consume_ack() -> TestResult {
    let Some(amqp) = require(Service::RabbitMq) else {
        return Ok(());
    };
    let queue = format!("{}-artists", Scope::new("amqp_smoke").queue_prefix());
    within("rabbitmq", async {
        let conn = Connection::connect(amqp.url(), ConnectionProperties::default()).await?;
        let channel = conn.create_channel().await?;

        // A durable quorum queue, the kind the pipeline declares.
        let mut args = FieldTable::default();
        args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                args,
            )
            .await?;

        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let body = br#"{"kind":"artists","records":[{"id":1,"name":"The Persuader"}]}"#;
        let confirm = channel
            .basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                body,
                BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_content_type("application/json".into()),
            )
            .await?
            .await?;
        assert!(confirm.is_ack(), "broker nacked the message: {confirm:?}");
        assert!(
            confirm.take_message().is_none(),
            "message was returned as unroutable"
        );

        let mut consumer = channel
            .basic_consume(
                queue.as_str().into(),
                "smoke".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let delivery = consumer.next().await.ok_or("consumer ended")??;
        assert_eq!(delivery.data.as_slice(), body.as_slice());
        delivery.ack(BasicAckOptions::default()).await?;

        let left = channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await?;
        assert_eq!(left, 0, "queue still held messages after the ack");
        conn.close(200, "done".into()).await?;
        Ok(())
    })
    .await
}
