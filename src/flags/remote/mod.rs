//! Remote flag evaluation (`POST /flags/?v=2`, as posthog-node calls it through `@posthog/core`
//! `getFlags`), allocation-free.
//!
//! Three pieces, none of which does I/O:
//!
//! - [`FlagsRequest`]: the request body, written into a caller buffer.
//! - [`RemoteFlags`]: a bounded, parsed answer (`N` flags, `B` bytes of text), from either the
//!   v2 `flags` shape or the legacy `featureFlags` shape.
//! - [`FlagErrors`]: the `$feature_flag_error` value, composed from error kinds and rendered
//!   exactly as PostHog's SDKs render it.
//!
//! ```
//! use posthog_embedded::flags::remote::{FlagsRequest, RemoteFlags, RemoteStorage};
//! use posthog_embedded::flags::{FlagValue, PropertyValue};
//!
//! let person = [("plan", PropertyValue::Str("pro"))];
//! let mut req = FlagsRequest::new("phc_token", "user-1");
//! req.person_properties = &person;
//! req.flag_keys = Some(&["beta"]);
//! let mut buf = [0u8; 256];
//! let len = req.write(&mut buf)?;
//! assert!(buf[..len].starts_with(br#"{"token":"phc_token","distinct_id":"user-1""#));
//!
//! let mut storage = RemoteStorage::<8, 256>::new();
//! let mut flags = RemoteFlags::new(&mut storage);
//! flags.parse(br#"{"flags":{"beta":{"enabled":true,"variant":"blue",
//!     "metadata":{"id":7,"version":2,"payload":"{\"color\":1}"}}},"requestId":"r-1"}"#)?;
//! let beta = flags.get("beta").unwrap();
//! assert_eq!(beta.value, FlagValue::variant("blue").unwrap());
//! assert_eq!(beta.payload, Some(r#"{"color":1}"#));
//! assert_eq!(flags.request_id(), Some("r-1"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod request;
mod response;

pub use error::{FlagErrorKind, FlagErrors};
pub use request::{write_property_value, FlagsRequest, RequestError, RequestGroup};
pub use response::{RemoteError, RemoteFlag, RemoteFlags, RemoteRequirements, RemoteStorage};
