pub mod action;
pub mod apply;
pub mod changed;
pub mod notify;
pub mod observe;
pub mod report;
pub mod schedule;
