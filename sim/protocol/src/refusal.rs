//! Requests a server refuses before they reach the product's router — a body, URL or header
//! block over the limit, a request that cannot be read or came too slowly, a handler that
//! broke — answered in the product's own error envelope with the HTTP status that says why.

use crate::{dataverse, entra, fno, lcs, Endpoints, Response, Server};
use dwsim_model::entra::EntraError;
use dwsim_model::error::{ErrorKind, SimError};
use dwsim_model::World;

/// Entra's code for a request it cannot take: `AADSTS90015` (query string too long) for 414,
/// `AADSTS90023` (invalid request) otherwise.
fn entra_code(status: u16) -> u32 {
    if status == 414 {
        90015
    } else {
        90023
    }
}

/// The envelope `server` answers a refused request with.
pub fn refusal(
    world: &mut World,
    endpoints: &Endpoints,
    server: &Server,
    status: u16,
    message: &str,
) -> Response {
    let error = SimError::new(ErrorKind::Transport(status), "", message);
    match server {
        Server::Dataverse(org) => {
            dataverse::error_response(world, endpoints, std::slice::from_ref(org), &error, false)
        }
        Server::Fno(_) => fno::odata_error(&error),
        Server::Lcs => lcs::refused(world, status, message),
        Server::Entra => {
            let code = entra_code(status);
            entra::error_response(
                world,
                &EntraError {
                    status,
                    error: "invalid_request",
                    code,
                    description: format!("AADSTS{code}: {message}"),
                },
            )
        }
    }
}
