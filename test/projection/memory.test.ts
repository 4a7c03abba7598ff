import { Layer } from "effect"
import { EventStore } from "effect-eventsourcing"
import { memoryReadModel, projectionContract } from "./projectionContract.js"

projectionContract("memory", Layer.merge(EventStore.layerMemory, memoryReadModel), { transactional: false })
