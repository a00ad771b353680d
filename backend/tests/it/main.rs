//! Integration stories against a real server on 127.0.0.1:0, spoken to by
//! real WebSocket and HTTP clients.

mod api;
mod auth;
mod bad_input;
mod binary;
mod chat;
mod cluster;
mod encodings;
mod faults;
mod lifecycle;
mod limits;
mod map;
mod notes;
mod notes_list;
mod proxies;
mod recovery;
mod support;
mod tls;
mod web_app;
