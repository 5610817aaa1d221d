//! Turning query results into Flight data.
//!
//! Results stream batch by batch from DataFusion to the client, so server
//! memory does not grow with result size. Types are made plain before
//! they leave (string and binary views become `Utf8` / `Binary`,
//! dictionaries their value type), and the FlightInfo schema is computed by
//! the same function, so the schema a client is promised is the schema it
//! gets. A query stops when it is cancelled, runs past its deadline, or the
//! client goes away (the stream is dropped).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_flight::FlightData;
use arrow_flight::encode::FlightDataEncoderBuilder;
use datafusion::execution::SendableRecordBatchStream;
use futures::{Stream, StreamExt};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::Status;

use super::error::{ServerError, flight_error, status_of};

/// Largest Flight data message the encoder produces, in bytes (batches are split to fit).
pub const FLIGHT_DATA_BYTES_MAX: usize = 2 * 1024 * 1024;

/// The type a column has on the wire.
pub fn wire_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        DataType::Dictionary(_, values) => wire_type(values),
        DataType::List(field) => DataType::List(Arc::new(wire_field(field))),
        DataType::LargeList(field) => DataType::LargeList(Arc::new(wire_field(field))),
        DataType::Struct(fields) => {
            DataType::Struct(fields.iter().map(|f| wire_field(f)).collect())
        }
        other => other.clone(),
    }
}

fn wire_field(field: &Field) -> Field {
    field.clone().with_data_type(wire_type(field.data_type()))
}

/// The schema a result has on the wire.
pub fn wire_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new_with_metadata(
        schema
            .fields()
            .iter()
            .map(|f| wire_field(f))
            .collect::<Vec<_>>(),
        schema.metadata().clone(),
    ))
}

/// Cast a batch to its wire schema (a no-op for plain types).
fn to_wire(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ServerError> {
    if batch.schema().fields() == schema.fields() {
        return Ok(batch);
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| arrow::compute::cast(c, f.data_type()))
        .collect::<Result<Vec<ArrayRef>, _>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// How a result stream ends early.
pub struct Guard {
    pub cancel: CancellationToken,
    /// None: no deadline (a live change feed runs until cancelled).
    pub deadline: Option<Instant>,
    pub timeout: Duration,
}

/// A result stream that stops with an error when cancelled or past its deadline.
struct GuardedStream {
    inner: SendableRecordBatchStream,
    schema: SchemaRef,
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    timeout: Duration,
    done: bool,
}

impl Stream for GuardedStream {
    type Item = Result<RecordBatch, ServerError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.cancelled.as_mut().poll(cx).is_ready() {
            self.done = true;
            return Poll::Ready(Some(Err(ServerError::Cancelled)));
        }
        if self
            .deadline
            .as_mut()
            .is_some_and(|d| d.as_mut().poll(cx).is_ready())
        {
            self.done = true;
            return Poll::Ready(Some(Err(ServerError::QueryTimeout(self.timeout))));
        }
        match self.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(batch))) => {
                let schema = self.schema.clone();
                Poll::Ready(Some(to_wire(batch, &schema)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.done = true;
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The Flight data stream DoGet returns for a result.
pub type FlightDataStream = Pin<Box<dyn Stream<Item = Result<FlightData, Status>> + Send>>;

/// Encode a result stream as Flight data, guarded by `guard`; `on_end` runs
/// when the stream is finished or dropped.
pub fn encode(
    stream: SendableRecordBatchStream,
    guard: Guard,
    on_end: impl FnOnce() + Send + 'static,
) -> FlightDataStream {
    let schema = wire_schema(&stream.schema());
    let guarded = GuardedStream {
        inner: stream,
        schema: schema.clone(),
        cancelled: Box::pin(guard.cancel.cancelled_owned()),
        deadline: guard
            .deadline
            .map(|d| Box::pin(tokio::time::sleep_until(d.into()))),
        timeout: guard.timeout,
        done: false,
    };
    let encoded = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .with_max_flight_data_size(FLIGHT_DATA_BYTES_MAX)
        .build(guarded.map(|r| r.map_err(flight_error)))
        .map(|r| r.map_err(status_of));
    Box::pin(OnDrop {
        inner: encoded,
        on_end: Some(Box::new(on_end)),
    })
}

/// Encode batches already in memory (metadata results).
pub fn encode_batch(batch: RecordBatch) -> FlightDataStream {
    let schema = batch.schema();
    let encoded = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(futures::stream::iter([Ok(batch)]))
        .map(|r| r.map_err(status_of));
    Box::pin(encoded)
}

/// Runs a callback once, when the wrapped stream ends or is dropped
/// (whichever comes first: at the end, before the client hears of it).
struct OnDrop<S> {
    inner: S,
    on_end: Option<Box<dyn FnOnce() + Send>>,
}

impl<S: Stream + Unpin> Stream for OnDrop<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let next = self.inner.poll_next_unpin(cx);
        if let Poll::Ready(None) = next
            && let Some(f) = self.on_end.take()
        {
            f();
        }
        next
    }
}

impl<S> Drop for OnDrop<S> {
    fn drop(&mut self) {
        if let Some(f) = self.on_end.take() {
            f();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_and_dictionary_types_become_plain_on_the_wire() {
        let schema = Schema::new(vec![
            Field::new("a", DataType::Utf8View, true),
            Field::new(
                "b",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                false,
            ),
            Field::new("c", DataType::Int64, false),
        ]);
        let wire = wire_schema(&schema);
        let types: Vec<&DataType> = wire.fields().iter().map(|f| f.data_type()).collect();
        assert_eq!(types, [&DataType::Utf8, &DataType::Utf8, &DataType::Int64]);
        assert!(!wire.field(1).is_nullable());
    }
}
