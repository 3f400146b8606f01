//! An answer's body as the pieces it is made of: a recorded response's unchanged stretches
//! shared with the fixture set, not copied, and the live values (MessageID, context) between
//! them. hyper gathers the pieces into its write buffer: a 70 KB page is copied once on its
//! way out, not written out whole first and then copied again.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

/// A body in pieces, with its length known (sent as `Content-Length`).
#[derive(Debug, Default)]
pub(crate) struct Pieces {
    pieces: VecDeque<Bytes>,
    len: u64,
}

impl Pieces {
    /// Appends a piece (an empty one is dropped).
    pub(crate) fn push(&mut self, piece: Bytes) {
        if !piece.is_empty() {
            self.len += piece.len() as u64;
            self.pieces.push_back(piece);
        }
    }

    /// The whole body in one buffer, for the answers that are sealed.
    pub(crate) fn to_vec(&self) -> Vec<u8> {
        let mut whole = Vec::with_capacity(self.len as usize);
        for piece in &self.pieces {
            whole.extend_from_slice(piece);
        }
        whole
    }
}

impl From<Bytes> for Pieces {
    fn from(piece: Bytes) -> Self {
        let mut pieces = Self::default();
        pieces.push(piece);
        pieces
    }
}

impl From<String> for Pieces {
    fn from(text: String) -> Self {
        Bytes::from(text).into()
    }
}

impl From<Vec<u8>> for Pieces {
    fn from(bytes: Vec<u8>) -> Self {
        Bytes::from(bytes).into()
    }
}

impl From<&'static str> for Pieces {
    fn from(text: &'static str) -> Self {
        Bytes::from_static(text.as_bytes()).into()
    }
}

impl Body for Pieces {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let piece = self.pieces.pop_front();
        if let Some(piece) = &piece {
            self.len -= piece.len() as u64;
        }
        Poll::Ready(piece.map(|piece| Ok(Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.pieces.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn the_pieces_come_out_whole_and_in_order_with_their_length() {
        let mut body = Pieces::from("<a>");
        body.push(Bytes::new());
        body.push(Bytes::from(String::from("live")));
        body.push(Bytes::from_static(b"</a>"));
        assert_eq!(body.size_hint().exact(), Some(11));
        assert_eq!(body.to_vec(), b"<a>live</a>");
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(&collected[..], b"<a>live</a>");
        assert!(Pieces::default().is_end_stream());
    }
}
