//! APIM policy documents: parse, merge scopes, compile into an executable pipeline.
