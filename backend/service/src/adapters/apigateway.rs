//! Frames to WebSocket clients through API Gateway's management API (`@connections`).

use async_trait::async_trait;
use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::error::SdkError;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use aws_smithy_types::error::display::DisplayErrorContext;

use crate::ports::{ConnectionPoster, PostError};

/// Posts on a client whose endpoint is the WebSocket API's stage
/// (`https://<api id>.execute-api.<region>.amazonaws.com/<stage>`).
#[derive(Clone)]
pub struct ManagementApiPoster {
    client: Client,
}

impl ManagementApiPoster {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl ConnectionPoster for ManagementApiPoster {
    async fn post(&self, connection_id: &str, frame: &str) -> Result<(), PostError> {
        let sent = self
            .client
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(frame.as_bytes()))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(service))
                if matches!(service.err(), PostToConnectionError::GoneException(_)) =>
            {
                Err(PostError::Gone)
            }
            Err(error) => Err(PostError::Failed(DisplayErrorContext(&error).to_string())),
        }
    }
}
