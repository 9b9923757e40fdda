mod backend;
mod client;
mod gateway;
mod silent;
