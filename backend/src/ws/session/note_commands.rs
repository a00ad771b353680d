//! The notes list's commands: `note_list`, `note_create`, `note_rename` and
//! `note_delete`. Like the document commands they wait on the store. Who may
//! use them is decided as for channels: listing needs read access to
//! `notes_list:all` and shows only the notes whose `notes:{id}` the
//! connection may read; the others need read access to the note's
//! `notes:{id}`.

use rookery_common::notes::NOTES_LIST_CHANNEL;
use rookery_common::{ChannelName, ClientMessage, ConnectionId, ErrorCode, ServerMessage};

use super::{Session, note_error};
use crate::hub::HubError;
use crate::notes::{NotesError, is_valid_id as is_valid_note_id, new_id as new_note_id};

impl Session {
    pub(super) async fn note_command(&mut self, command: ClientMessage) -> Result<(), HubError> {
        let connection_id = self
            .connection_id
            .ok_or_else(|| HubError::new(ErrorCode::NotConnected, "send connect first"))?;
        let notes = self.state.notes.clone();
        match command {
            ClientMessage::NoteList { id } => {
                let channel = ChannelName::parse(NOTES_LIST_CHANNEL).expect("a valid channel name");
                let granted = self.capabilities.allows(&channel);
                self.hub()
                    .with(|hub| hub.check_read(connection_id, &channel, granted))?;
                let mut list = notes.list().await.map_err(|error| note_error(&error))?;
                // Only the notes this connection may read, by the check
                // `doc_sync` makes: a private `notes` namespace keeps its
                // ids and titles from those it does not grant.
                list.retain(|note| self.check_note_access(connection_id, &note.id).is_ok());
                self.reply(&ServerMessage::Notes { id, notes: list });
            }
            ClientMessage::NoteCreate { id, title } => {
                let note = new_note_id();
                self.check_note_access(connection_id, &note)?;
                let note = notes
                    .create(&note, &title)
                    .await
                    .map_err(|error| note_error(&error))?;
                // Carries the new id: sent even to a command without an id.
                self.reply(&ServerMessage::NoteCreated { id, note });
            }
            ClientMessage::NoteRename { id, note, title } => {
                self.check_note_access(connection_id, &note)?;
                let note = notes
                    .rename(&note, &title)
                    .await
                    .map_err(|error| note_error(&error))?;
                self.acknowledge(&ServerMessage::NoteRenamed { id, note });
            }
            ClientMessage::NoteDelete { id, note } => {
                self.check_note_access(connection_id, &note)?;
                notes
                    .delete(&note)
                    .await
                    .map_err(|error| note_error(&error))?;
                self.acknowledge(&ServerMessage::NoteDeleted { id, note });
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether the connection may use note `note` (read its `notes:`
    /// channel). An id no note can have is an unknown note.
    fn check_note_access(&self, connection_id: ConnectionId, note: &str) -> Result<(), HubError> {
        let channel = ChannelName::new("notes", note)
            .ok()
            .filter(|_| is_valid_note_id(note))
            .ok_or_else(|| note_error(&NotesError::UnknownNote))?;
        self.check_document_access(connection_id, &channel)
    }
}
