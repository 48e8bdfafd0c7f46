//! What agents write: command lines, quoted history, proof of the sender. All pure; the
//! workflow applies the results (`workflow::agents`).
//! - [`commands`]: `#status resolved`-style lines at the top of an agent's mail.
//! - [`quote`]: the new text of a message without its quoted history, for agents' eyes.
//! - [`auth`]: `Authentication-Results` checked against the trusted authserv-id.
//! - [`token`]: the per-agent reply address that proves an agent's reply.

pub mod auth;
pub mod commands;
pub mod quote;
pub mod token;
