//! The sans-IO client on a virtual clock: PostHog's contract scenarios, delivery through
//! outages, flag reads, randomised simulations and `send_due` over a scripted transport.

#[path = "../support/config_cases.rs"]
mod config_cases;

mod contracts;
mod delivery;
mod flags;
mod outage_sim;
mod sim;
mod transport;
