const sharp=require('sharp');
(async()=>{
const files=process.argv.slice(3);
const imgs=await Promise.all(files.map(async f=>{const m=await sharp(f).metadata();return {f,w:m.width,h:m.height}}));
let y=0;const comps=[];for(const i of imgs){comps.push({input:i.f,left:0,top:y});y+=i.h+4}
const W=Math.max(...imgs.map(i=>i.w));
await sharp({create:{width:W,height:y,channels:3,background:'#ccc'}}).composite(comps).png().toFile(process.argv[2]);
})()
