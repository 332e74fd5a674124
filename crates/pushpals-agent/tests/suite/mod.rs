mod gateway;
mod planner;
mod providers;
