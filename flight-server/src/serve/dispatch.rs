//! The gRPC service as registered: arrow-flight's Flight SQL dispatch over
//! [`DriftFlightSql`], with a SQLSTATE on every status it answers with.
//!
//! arrow-flight refuses some requests itself, before DriftDB sees them: a
//! command or action body that names a known message but does not decode
//! as it is `Internal` ("Unable to decode Any value"), a body that is not
//! an `Any` at all is `InvalidArgument`, and a command DriftDB does not
//! implement is `Unimplemented`, all without a SQLSTATE. Each is the
//! client's malformed or unsupported request; [`with_sqlstate`] gives it
//! the code and SQLSTATE DriftDB uses for those.

use arrow_flight::flight_service_server::FlightService;
use arrow_flight::{
    Action, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo, HandshakeRequest, PollInfo,
    SchemaResult, Ticket,
};
use tonic::{Request, Response, Status, Streaming};

use super::error::with_sqlstate;
use super::service::DriftFlightSql;

/// [`DriftFlightSql`] behind arrow-flight's dispatch, every status with a SQLSTATE.
pub struct Dispatch(pub DriftFlightSql);

type Answer<T> = Result<Response<T>, Status>;
type Inner = DriftFlightSql;

#[tonic::async_trait]
impl FlightService for Dispatch {
    type HandshakeStream = <Inner as FlightService>::HandshakeStream;
    type ListFlightsStream = <Inner as FlightService>::ListFlightsStream;
    type DoGetStream = <Inner as FlightService>::DoGetStream;
    type DoPutStream = <Inner as FlightService>::DoPutStream;
    type DoExchangeStream = <Inner as FlightService>::DoExchangeStream;
    type DoActionStream = <Inner as FlightService>::DoActionStream;
    type ListActionsStream = <Inner as FlightService>::ListActionsStream;

    async fn handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Answer<Self::HandshakeStream> {
        self.0.handshake(request).await.map_err(with_sqlstate)
    }

    async fn list_flights(&self, request: Request<Criteria>) -> Answer<Self::ListFlightsStream> {
        self.0.list_flights(request).await.map_err(with_sqlstate)
    }

    async fn get_flight_info(&self, request: Request<FlightDescriptor>) -> Answer<FlightInfo> {
        self.0.get_flight_info(request).await.map_err(with_sqlstate)
    }

    async fn poll_flight_info(&self, request: Request<FlightDescriptor>) -> Answer<PollInfo> {
        self.0
            .poll_flight_info(request)
            .await
            .map_err(with_sqlstate)
    }

    async fn get_schema(&self, request: Request<FlightDescriptor>) -> Answer<SchemaResult> {
        self.0.get_schema(request).await.map_err(with_sqlstate)
    }

    async fn do_get(&self, request: Request<Ticket>) -> Answer<Self::DoGetStream> {
        self.0.do_get(request).await.map_err(with_sqlstate)
    }

    async fn do_put(&self, request: Request<Streaming<FlightData>>) -> Answer<Self::DoPutStream> {
        self.0.do_put(request).await.map_err(with_sqlstate)
    }

    async fn do_exchange(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Answer<Self::DoExchangeStream> {
        self.0.do_exchange(request).await.map_err(with_sqlstate)
    }

    async fn do_action(&self, request: Request<Action>) -> Answer<Self::DoActionStream> {
        self.0.do_action(request).await.map_err(with_sqlstate)
    }

    async fn list_actions(&self, request: Request<Empty>) -> Answer<Self::ListActionsStream> {
        self.0.list_actions(request).await.map_err(with_sqlstate)
    }
}
